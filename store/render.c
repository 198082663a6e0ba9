/* render.c - text and JSON renderings of catalog records; see render.h. */
#include "store/render.h"

#include <string.h>

#include "store/json.h"

void render_id_hex(const uint8_t id[32], char *out, int short_form)
{
    int n = short_form ? 6 : 32;
    for (int i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", id[i]);
}

void render_size(char *buf, size_t len, unsigned long long n)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", n);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
}

void render_text_bytes(FILE *f, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c == '\\')
            fputs("\\\\", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);    /* UTF-8 passes through; terminals render it */
    }
}

void render_text_argv(FILE *f, const char *p, size_t n)
{
    while (n && p[n - 1] == 0)
        n--;
    for (size_t i = 0; i < n;) {
        size_t len = strnlen(p + i, n - i);
        if (i)
            fputc(' ', f);
        render_text_bytes(f, p + i, len);
        i += len + 1;
    }
}

static void render_argv(FILE *f, struct cat_str a)
{
    render_text_argv(f, a.p, a.n);
}

void render_proc_cmdline(FILE *f, struct cat_reader *rd, uint64_t proc_id)
{
    struct cat_image im;
    struct cat_proc p;
    if (!proc_id) {
        fputs("-", f);
        return;
    }
    fprintf(f, "p%llu ", (unsigned long long)proc_id);
    if (cat_proc_last_image(rd, proc_id, &im) == 0 && im.argv.n)
        render_argv(f, im.argv);
    else if (cat_proc_get(rd, proc_id, &p) == 0)
        render_argv(f, p.argv.n ? p.argv : p.comm);
}

static int render_is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void render_json_source(FILE *f, struct cat_reader *rd, const struct cat_version *v)
{
    struct cat_str sp;
    if (!v->src_file_id || cat_file_path(rd, v->src_file_id, &sp)) {
        fputs("null", f);
        return;
    }
    fputs("{\"path\":", f);
    json_str(f, sp.p, sp.n);
    fprintf(f, ",\"version\":%u}", v->src_vno);
}

static void render_json_writer(FILE *f, struct cat_reader *rd, uint64_t proc_id)
{
    struct cat_image im;
    struct cat_proc p;
    if (!proc_id || cat_proc_get(rd, proc_id, &p)) {
        fputs("null", f);
        return;
    }
    fprintf(f, "{\"id\":%llu,\"pid\":%u,\"exe\":", (unsigned long long)proc_id, p.tgid);
    int img = cat_proc_last_image(rd, proc_id, &im) == 0;
    json_str(f, img ? im.exe.p : p.exe.p, img ? im.exe.n : p.exe.n);
    fputs(",\"argv\":", f);
    json_strv(f, img ? im.argv.p : p.argv.p, img ? im.argv.n : p.argv.n);
    fprintf(f, ",\"uid\":%u}", p.uid);
}

void render_version_json(FILE *f, struct cat_reader *rd, struct cat_str path,
                         const struct cat_version *v)
{
    char hex[65];
    fputs("{\"path\":", f);
    json_str(f, path.p, path.n);
    fprintf(f, ",\"version\":%u,\"seq\":%llu,\"time\":", v->vno, (unsigned long long)v->seq);
    json_time(f, v->wall_ns);
    fprintf(f, ",\"origin\":\"%s\"", cat_origin_name(v->origin));
    if (v->origin == CAT_ORIGIN_DELETED || (v->flags & (CAT_V_MISSING | CAT_V_UNSTORED))) {
        fputs(",\"content_id\":null", f);
    } else {
        render_id_hex(v->content_id, hex, 0);
        fprintf(f, ",\"content_id\":\"%s\"", hex);
    }
    fprintf(f, ",\"size\":%llu,\"mode\":\"%04o\",\"uid\":%u,\"gid\":%u,\"mtime\":",
            (unsigned long long)v->size, v->mode & 07777, v->uid, v->gid);
    json_time(f, v->mtime_ns);
    fputs(",\"kind\":", f);
    json_str(f, v->kind.p, v->kind.n);
    fprintf(f, ",\"stored\":%s,\"hash_only\":%s",
            v->origin == CAT_ORIGIN_DELETED ||
                    (v->flags & (CAT_V_MISSING | CAT_V_HASH_ONLY | CAT_V_UNSTORED))
                ? "false" : "true",
            v->flags & CAT_V_HASH_ONLY ? "true" : "false");
    fputs(",\"missing\":", f);
    if (v->flags & CAT_V_MISSING)
        json_str(f, v->err.p, v->err.n);
    else
        fputs("null", f);
    fputs(",\"source\":", f);
    render_json_source(f, rd, v);
    fputs(",\"writer\":", f);
    render_json_writer(f, rd, v->writer);
    fputs(",\"policy\":", f);
    if (render_is_zero(v->policy_id, 32)) {
        fputs("null", f);
    } else {
        render_id_hex(v->policy_id, hex, 0);
        fprintf(f, "\"%s\"", hex);
    }
    fputc('}', f);
}

void render_log_header(FILE *f)
{
    fprintf(f, "%-5s %-19s %10s  %-12s  %-8s %-28s %s\n", "VER", "TIME", "SIZE", "ID",
            "KIND", "ORIGIN", "WRITER");
}

static void render_origin(FILE *f, struct cat_reader *rd, const struct cat_version *v)
{
    char buf[64];
    struct cat_str sp;
    int n = snprintf(buf, sizeof buf, "%s", cat_origin_name(v->origin));
    if (v->src_file_id && v->origin != CAT_ORIGIN_DELETED &&
        cat_file_path(rd, v->src_file_id, &sp) == 0) {
        fprintf(f, "%s from ", buf);
        for (size_t i = 0; i < sp.n; i++)
            fputc((unsigned char)sp.p[i] < 0x20 ? '?' : sp.p[i], f);
        fprintf(f, "@%u ", v->src_vno);
        return;
    }
    fprintf(f, "%-*s ", 28, buf);
    (void)n;
}

void render_log_line(FILE *f, struct cat_reader *rd, const struct cat_version *v)
{
    char when[32], size[32], id[16];
    json_fmt_localtime(when, sizeof when, v->wall_ns);
    render_size(size, sizeof size, v->size);
    if (v->origin == CAT_ORIGIN_DELETED)
        strcpy(id, "-");
    else if (v->flags & CAT_V_MISSING)
        strcpy(id, "(missing)");
    else if (v->flags & CAT_V_UNSTORED)
        strcpy(id, "(unstored)");
    else
        render_id_hex(v->content_id, id, 1);
    fprintf(f, "%-5u %-19s %10s  %-12s  %-8.*s ", v->vno, when,
            v->origin == CAT_ORIGIN_DELETED ? "-" : size, id,
            (int)(v->kind.n ? v->kind.n : 1), v->kind.n ? v->kind.p : "-");
    render_origin(f, rd, v);
    render_proc_cmdline(f, rd, v->writer);
    if (v->flags & CAT_V_MISSING)
        fprintf(f, "  [not captured: %.*s]", (int)v->err.n, v->err.p);
    if (v->flags & CAT_V_HASH_ONLY)
        fputs("  [hash only]", f);
    if (v->flags & CAT_V_UNSTORED)
        fputs("  [not snapshotted by policy]", f);
    fputc('\n', f);
}

/* --- processes ------------------------------------------------------------ */

struct render_img_ctx { FILE *f; int first; };

static const char *const render_fd_names[] = { "stdin", "stdout", "stderr" };

static int render_image_json(void *arg, const struct cat_image *im)
{
    struct render_img_ctx *ic = arg;
    FILE *f = ic->f;
    fprintf(f, "%s{\"n\":%u,\"seq\":%llu,\"time\":", ic->first ? "" : ",", im->n,
           (unsigned long long)im->seq);
    json_time(f, im->wall_ns);
    fprintf(f, ",\"exe\":");
    json_str(f, im->exe.p, im->exe.n);
    fprintf(f, ",\"argv\":");
    json_strv(f, im->argv.p, im->argv.n);
    for (int i = 0; i < 3; i++) {
        fprintf(f, ",\"%s\":", render_fd_names[i]);
        json_str(f, im->fd[i].p, im->fd[i].n);
    }
    fprintf(f, "}");
    ic->first = 0;
    return 0;
}

void render_proc_json(FILE *f, struct cat_reader *rd, const struct cat_proc *p)
{
    fprintf(f, "{\"id\":%llu,\"tgid\":%u,\"ppid\":%u,\"parent\":",
            (unsigned long long)p->id, p->tgid, p->ppid);
    if (p->parent_id)
        fprintf(f, "%llu", (unsigned long long)p->parent_id);
    else
        fprintf(f, "null");
    fprintf(f, ",\"pgid\":%u,\"sid\":%u,\"uid\":%u,\"gid\":%u,\"boot_id\":\"", p->pgid,
           p->sid, p->uid, p->gid);
    for (int i = 0; i < 16; i++)
        fprintf(f, "%02x", p->boot_id[i]);
    fprintf(f, "\",\"start_ticks\":%llu,\"seq\":%llu,\"time\":",
           (unsigned long long)p->start, (unsigned long long)p->seq);
    json_time(f, p->wall_ns);
    fprintf(f, ",\"comm\":");
    json_str(f, p->comm.p, p->comm.n);
    fprintf(f, ",\"exe\":");
    json_str(f, p->exe.p, p->exe.n);
    fprintf(f, ",\"argv\":");
    json_strv(f, p->argv.p, p->argv.n);
    fprintf(f, ",\"cwd\":");
    json_str(f, p->cwd.p, p->cwd.n);
    fprintf(f, ",\"env\":");
    json_strv(f, p->env.p, p->env.n);
    for (int i = 0; i < 3; i++) {
        fprintf(f, ",\"%s\":", render_fd_names[i]);
        json_str(f, p->fd[i].p, p->fd[i].n);
    }
    fprintf(f, ",\"images\":[");
    struct render_img_ctx ic = { f, 1 };
    cat_images_scan(rd, p->id, render_image_json, &ic);
    fprintf(f, "]}");
}

