/*
 * control.h - the daemon's control socket (protocol in runtime.h).
 * One thread accepts connections and answers one request per connection.
 */
#ifndef FS_CONTROL_H
#define FS_CONTROL_H

struct fs_ctx;

int fs_control_start(const char *sock_path, struct fs_ctx *ctx);
void fs_control_stop(void);

#endif
