/* test_chunker.c - content-defined chunking: determinism, bounds, and
 * boundary stability under insertions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/chunker.h"

#define DATA_LEN ((size_t)16 << 20)

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
}

/* Chunk p[0..n) feeding `step` bytes at a time; lengths go to lens[]. */
static size_t chunk_all(const uint8_t *p, size_t n, size_t step, uint32_t *lens)
{
    struct chunker c;
    size_t nc = 0, start = 0, off = 0;
    assert_int_equal(chunker_init(&c, NULL), 0);
    while (off < n) {
        size_t len = n - off < step ? n - off : step;
        int cut;
        size_t used = chunker_feed(&c, p + off, len, &cut);
        off += used;
        if (cut) {
            lens[nc++] = (uint32_t)(off - start);
            start = off;
        }
    }
    if (off > start)
        lens[nc++] = (uint32_t)(off - start);
    return nc;
}

static void test_deterministic_any_feed_size(void **state)
{
    (void)state;
    uint8_t *p = malloc(DATA_LEN);
    uint32_t *a = malloc(4096 * sizeof *a), *b = malloc(4096 * sizeof *b);
    fill_random(p, DATA_LEN, 1);
    size_t na = chunk_all(p, DATA_LEN, DATA_LEN, a);
    size_t nb = chunk_all(p, DATA_LEN, 4093, b);     /* odd, smaller than min */
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    nb = chunk_all(p, DATA_LEN, 1 << 20, b);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    free(p); free(a); free(b);
}

static void test_bounds_and_average(void **state)
{
    (void)state;
    uint8_t *p = malloc(DATA_LEN);
    uint32_t *l = malloc(4096 * sizeof *l);
    fill_random(p, DATA_LEN, 2);
    size_t n = chunk_all(p, DATA_LEN, 65536, l);
    for (size_t i = 0; i + 1 < n; i++) {
        assert_true(l[i] >= CHUNKER_MIN);
        assert_true(l[i] <= CHUNKER_MAX);
    }
    size_t avg = DATA_LEN / n;
    print_message("# %zu chunks, average %zu bytes\n", n, avg);
    assert_true(avg > CHUNKER_AVG / 2 && avg < CHUNKER_AVG * 2);
    /* Zeros never match a content cut: every chunk is max-sized. */
    memset(p, 0, DATA_LEN);
    n = chunk_all(p, DATA_LEN, 65536, l);
    for (size_t i = 0; i + 1 < n; i++) {
        assert_true(l[i] >= CHUNKER_MIN);
        assert_true(l[i] <= CHUNKER_MAX);
    }
    free(p); free(l);
}

/* Chunk boundaries as offsets into p, for set comparison. */
static size_t boundaries(const uint8_t *p, size_t n, uint64_t *out, uint64_t shift)
{
    uint32_t *l = malloc(4096 * sizeof *l);
    size_t nc = chunk_all(p, n, 1 << 20, l), off = 0;
    for (size_t i = 0; i < nc; i++) {
        off += l[i];
        out[i] = off - shift;
    }
    free(l);
    return nc;
}

static void test_insert_at_front_reuses_chunks(void **state)
{
    (void)state;
    const size_t ins = 100;
    uint8_t *p = malloc(DATA_LEN + ins);
    uint64_t *a = malloc(4096 * 8), *b = malloc(4096 * 8);
    fill_random(p + ins, DATA_LEN, 3);
    size_t na = boundaries(p + ins, DATA_LEN, a, 0);
    fill_random(p, ins, 4);
    size_t nb = boundaries(p, DATA_LEN + ins, b, ins);   /* same coordinates */
    size_t same = 0, j = 0;
    for (size_t i = 0; i < na; i++) {
        while (j < nb && b[j] < a[i])
            j++;
        same += j < nb && b[j] == a[i];
    }
    print_message("# %zu of %zu boundaries survive a %zu-byte insertion\n", same, na, ins);
    assert_true(same * 100 >= na * 95);
    free(p); free(a); free(b);
}

static void test_bad_params(void **state)
{
    (void)state;
    struct chunker c;
    struct chunker_params bad1 = { 1024, 3000, 8192 };      /* avg not 2^k */
    struct chunker_params bad2 = { 8192, 4096, 16384 };     /* min > avg */
    struct chunker_params ok = { 1024, 4096, 16384 };
    assert_int_equal(chunker_init(&c, &bad1), -EINVAL);
    assert_int_equal(chunker_init(&c, &bad2), -EINVAL);
    assert_int_equal(chunker_init(&c, &ok), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_any_feed_size),
        cmocka_unit_test(test_bounds_and_average),
        cmocka_unit_test(test_insert_at_front_reuses_chunks),
        cmocka_unit_test(test_bad_params),
    };
    return cmocka_run_group_tests_name("chunker", tests, NULL, NULL);
}
