/*
 * loop.h - the event loop: one epoll set per worker, level-triggered.
 *
 * An owner embeds a loop_io in its connection and registers it; readiness
 * calls io->fn with the epoll event bits. Handlers never free an owner whose
 * events may still be pending in the current batch: they close the fd, call
 * loop_del, and free the owner after loop_poll returns.
 */
#ifndef PROXY_LOOP_H
#define PROXY_LOOP_H

#include <stdint.h>

typedef struct loop loop;
typedef struct loop_io loop_io;
typedef void (*loop_fn)(loop_io *io, uint32_t events);

struct loop_io {
    int fd;
    uint32_t mask; /* EPOLLIN / EPOLLOUT currently asked for */
    loop_fn fn;
    void *owner;
};

/* Masks and event bits. Their values are epoll's (loop.c checks), so the
 * loop passes them through untranslated; nothing outside loop.c names epoll. */
#define LOOP_READ 1u  /* asked for, and reported: readable */
#define LOOP_WRITE 4u /* asked for, and reported: writable */
#define LOOP_ERROR 0x18u /* reported only: an error or a hang-up on the fd */
/* loop_add only: of several loops watching one fd, one wakes per event
 * (a listener shared by every worker). */
#define LOOP_EXCLUSIVE (1u << 28)

int loop_create(loop **out);
void loop_free(loop *l);
/* Registers io->fd with `mask`. Returns 0 or -errno. */
int loop_add(loop *l, loop_io *io, uint32_t mask);
/* Changes the mask (no system call when it is unchanged). */
int loop_set(loop *l, loop_io *io, uint32_t mask);
void loop_del(loop *l, loop_io *io);
/* Waits up to timeout_ms and dispatches; returns the number of events. */
int loop_poll(loop *l, int timeout_ms);

#endif
