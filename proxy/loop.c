/*
 * loop.c - the loop of loop.h: epoll(7) here, io_uring (loop_uring.c) when
 * chosen and built.
 *
 * epoll is level-triggered, so a handler may leave data unread (for
 * backpressure) and be called again on the next poll once it asks for
 * reads again; loop_uring.c keeps the same promise.
 */
#define _GNU_SOURCE
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#ifdef CHASH_HAVE_URING
#include "loop_uring.h"
#endif

#define LOOP_BATCH 256

_Static_assert(LOOP_READ == EPOLLIN && LOOP_WRITE == EPOLLOUT, "loop masks are epoll bits");
_Static_assert(LOOP_ERROR == (EPOLLERR | EPOLLHUP), "loop masks are epoll bits");
_Static_assert(LOOP_EXCLUSIVE == EPOLLEXCLUSIVE, "loop masks are epoll bits");
_Static_assert((LOOP_STREAM & (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLEXCLUSIVE |
                               EPOLLET | EPOLLONESHOT | EPOLLWAKEUP | EPOLLRDHUP)) == 0,
               "LOOP_STREAM is no epoll bit");

struct loop {
#ifdef CHASH_HAVE_URING
    uring *u; /* NULL: epoll */
#endif
    int epfd;
    struct epoll_event events[LOOP_BATCH];
};

#ifdef CHASH_HAVE_URING
#define URING(l) ((l)->u)
#define URING_BUILT 1
#else
#define URING(l) 0
#define URING_BUILT 0
#endif

int loop_kind_parse(const char *name) {
    if (strcmp(name, "auto") == 0) return LOOP_AUTO;
    if (strcmp(name, "epoll") == 0) return LOOP_EPOLL;
    if (strcmp(name, "io_uring") == 0) return LOOP_URING;
    return -1;
}

int loop_create(loop **out, loop_kind kind) {
    loop *l = calloc(1, sizeof *l);
    if (!l) return -ENOMEM;
    l->epfd = -1;
    if (kind != LOOP_EPOLL) {
#ifdef CHASH_HAVE_URING
        int rc = uring_create(&l->u);
        if (rc == 0) {
            *out = l;
            return 0;
        }
        /* Missing, disabled (io_uring_disabled, seccomp) or too old. */
        if (kind == LOOP_URING) {
            free(l);
            return rc;
        }
#else
        if (kind == LOOP_URING) {
            free(l);
            return -ENOSYS;
        }
#endif
    }
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        int e = errno;
        free(l);
        return -e;
    }
    *out = l;
    return 0;
}

const char *loop_kinds_built(void) { return URING_BUILT ? "io_uring epoll" : "epoll"; }

const char *loop_name(const loop *l) {
    (void)l;
    return URING(l) ? "io_uring" : "epoll";
}

void loop_free(loop *l) {
    if (!l) return;
#ifdef CHASH_HAVE_URING
    uring_free(l->u);
#endif
    if (l->epfd >= 0) close(l->epfd);
    free(l);
}

int loop_add(loop *l, loop_io *io, uint32_t mask) {
    io->reg = NULL;
#ifdef CHASH_HAVE_URING
    if (l->u) return uring_add(l->u, io, mask);
#endif
    struct epoll_event ev = {.events = mask & ~LOOP_STREAM, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) != 0) return -errno;
    io->mask = mask & (LOOP_READ | LOOP_WRITE);
    return 0;
}

int loop_set(loop *l, loop_io *io, uint32_t mask) {
#ifdef CHASH_HAVE_URING
    if (l->u) return uring_set(l->u, io, mask);
#endif
    if (io->mask == mask) return 0;
    struct epoll_event ev = {.events = mask, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) != 0) return -errno;
    io->mask = mask;
    return 0;
}

void loop_del(loop *l, loop_io *io) {
#ifdef CHASH_HAVE_URING
    if (l->u) {
        uring_del(l->u, io, 0);
        return;
    }
#endif
    if (io->fd >= 0) epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->mask = 0;
}

void loop_close(loop *l, loop_io *io) {
    if (io->fd < 0) return;
#ifdef CHASH_HAVE_URING
    if (l->u) {
        if (io->reg) {
            uring_del(l->u, io, 1);
            return;
        }
    }
#endif
    loop_del(l, io);
    close(io->fd);
    io->fd = -1;
}

ssize_t loop_recv(loop *l, loop_io *io, void *dst, size_t len) {
#ifdef CHASH_HAVE_URING
    if (l->u) return uring_recv(l->u, io, dst, len);
#endif
    (void)l;
    return read(io->fd, dst, len);
}

ssize_t loop_send(loop *l, loop_io *io, const void *src, size_t len) {
#ifdef CHASH_HAVE_URING
    if (l->u) return uring_send(l->u, io, src, len);
#endif
    (void)l;
    return write(io->fd, src, len);
}

void loop_flush(loop *l, int timeout_ms) {
#ifdef CHASH_HAVE_URING
    if (l->u) uring_flush(l->u, timeout_ms);
#endif
    (void)l;
    (void)timeout_ms;
}

int loop_poll(loop *l, int timeout_ms) {
#ifdef CHASH_HAVE_URING
    if (l->u) return uring_poll(l->u, timeout_ms);
#endif
    int n = epoll_wait(l->epfd, l->events, LOOP_BATCH, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        loop_io *io = l->events[i].data.ptr;
        io->fn(io, l->events[i].events);
    }
    return n;
}
