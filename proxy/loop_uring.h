/*
 * loop_uring.h - io_uring(7) behind loop.h (loop.c's only caller).
 *
 * The functions mirror loop.h's; their contracts are loop.h's.
 */
#ifndef PROXY_LOOP_URING_H
#define PROXY_LOOP_URING_H

#include "loop.h"

typedef struct uring uring;

/* Returns 0 or -errno (-ENOSYS and the like where the kernel refuses). */
int uring_create(uring **out);
void uring_free(uring *u);
int uring_add(uring *u, loop_io *io, uint32_t mask);
int uring_set(uring *u, loop_io *io, uint32_t mask);
void uring_del(uring *u, loop_io *io, int is_close);
ssize_t uring_recv(uring *u, loop_io *io, void *dst, size_t len);
ssize_t uring_send(uring *u, loop_io *io, const void *src, size_t len);
int uring_poll(uring *u, int timeout_ms);
void uring_flush(uring *u, int timeout_ms);

#endif
