/*
 * loop.h - the event loop: one per worker, epoll(7) or io_uring(7), chosen
 * when it is created.
 *
 * An owner embeds a loop_io in its connection and registers it; readiness
 * calls io->fn with event bits, level-triggered: an owner that leaves data
 * unread (backpressure) is called again once it asks for reads again.
 *
 * A registration made with LOOP_STREAM reads and writes only through
 * loop_recv and loop_send. On epoll those are read(2) and write(2); on
 * io_uring the loop does the I/O itself, batched: every send and receive of
 * a loop turn goes to the kernel in the one system call that also waits
 * (loop_send copies the bytes and says they are written; a failure comes
 * back as LOOP_ERROR and from the next loop_recv). Without LOOP_STREAM the
 * owner does its own I/O on io->fd (TLS, listeners, eventfds, probes).
 *
 * Handlers never free an owner whose events may still be pending in the
 * current batch: they call loop_close (or loop_del), and free the owner
 * after loop_poll returns.
 */
#ifndef PROXY_LOOP_H
#define PROXY_LOOP_H

#include <stdint.h>
#include <sys/types.h>

typedef struct loop loop;
typedef struct loop_io loop_io;
typedef struct loop_reg loop_reg;
typedef void (*loop_fn)(loop_io *io, uint32_t events);

struct loop_io {
    int fd;
    uint32_t mask; /* LOOP_READ / LOOP_WRITE currently asked for */
    loop_fn fn;
    void *owner;
    loop_reg *reg; /* the loop's own record (io_uring); NULL on epoll */
};

/* Masks and event bits. Their values are epoll's (loop.c checks), so the
 * epoll loop passes them through untranslated. */
#define LOOP_READ 1u  /* asked for, and reported: readable */
#define LOOP_WRITE 4u /* asked for, and reported: writable */
#define LOOP_ERROR 0x18u /* reported only: an error or a hang-up on the fd */
/* loop_add only: of several loops watching one fd, one wakes per event
 * (a listener shared by every worker). */
#define LOOP_EXCLUSIVE (1u << 28)
/* loop_add only: a stream socket (connected, or connecting: LOOP_WRITE
 * reports the connect's end) whose bytes go through loop_recv/loop_send. */
#define LOOP_STREAM (1u << 27)

typedef enum { LOOP_AUTO, LOOP_EPOLL, LOOP_URING } loop_kind;

/* "auto", "epoll" or "io_uring" to a kind; -1 if none. */
int loop_kind_parse(const char *name);
/* Creates a loop of `kind`; LOOP_AUTO is io_uring where the kernel lets us
 * (else epoll). Call loop_poll from one thread only. Returns 0 or -errno
 * (-ENOSYS: io_uring asked for and not available, or not built in). */
int loop_create(loop **out, loop_kind kind);
/* "epoll" or "io_uring". */
const char *loop_name(const loop *l);
/* The loops this build has: "io_uring epoll" or "epoll". */
const char *loop_kinds_built(void);
/* Frees the loop; fds still registered are not closed. */
void loop_free(loop *l);
/* Registers io->fd with `mask` (| LOOP_EXCLUSIVE, LOOP_STREAM). Returns 0
 * or -errno. */
int loop_add(loop *l, loop_io *io, uint32_t mask);
/* Changes the mask (no system call when it is unchanged). */
int loop_set(loop *l, loop_io *io, uint32_t mask);
/* Unregisters io (the fd stays open; not for LOOP_STREAM, see loop_close). */
void loop_del(loop *l, loop_io *io);
/* Unregisters io and closes its fd (io->fd becomes -1). On io_uring the
 * close waits until what loop_send took has been written (at most
 * LOOP_LINGER_MS), so a reply and then a close reach the peer in order. */
void loop_close(loop *l, loop_io *io);
#define LOOP_LINGER_MS 5000
/* Reads up to len bytes of a LOOP_STREAM io: > 0 bytes, 0 at EOF, -1 with
 * errno (EAGAIN when nothing is there yet). */
ssize_t loop_recv(loop *l, loop_io *io, void *dst, size_t len);
/* Writes up to len bytes of a LOOP_STREAM io: bytes taken (> 0), or -1 with
 * errno (EAGAIN when full: ask for LOOP_WRITE). */
ssize_t loop_send(loop *l, loop_io *io, const void *src, size_t len);
/* Waits up to timeout_ms (-1: no limit) and dispatches; returns the number
 * of events, or -errno. */
int loop_poll(loop *l, int timeout_ms);
/* Before a worker stops polling: the closes loop_close left to the loop
 * are done, waiting up to timeout_ms for what they still have to write
 * (dispatching events meanwhile, as loop_poll). Nothing to do on epoll. */
void loop_flush(loop *l, int timeout_ms);

#endif
