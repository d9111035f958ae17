/*
 * loop.c - epoll(7) behind loop.h.
 *
 * Level-triggered, so a handler may leave data unread (for backpressure) and
 * be called again on the next poll once it asks for reads again.
 */
#define _GNU_SOURCE
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LOOP_BATCH 256

_Static_assert(LOOP_READ == EPOLLIN && LOOP_WRITE == EPOLLOUT, "loop masks are epoll bits");
_Static_assert(LOOP_ERROR == (EPOLLERR | EPOLLHUP), "loop masks are epoll bits");
_Static_assert(LOOP_EXCLUSIVE == EPOLLEXCLUSIVE, "loop masks are epoll bits");

struct loop {
    int epfd;
    struct epoll_event events[LOOP_BATCH];
};

int loop_create(loop **out) {
    loop *l = calloc(1, sizeof *l);
    if (!l) return -ENOMEM;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        int e = errno;
        free(l);
        return -e;
    }
    *out = l;
    return 0;
}

void loop_free(loop *l) {
    if (!l) return;
    close(l->epfd);
    free(l);
}

int loop_add(loop *l, loop_io *io, uint32_t mask) {
    struct epoll_event ev = {.events = mask, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) != 0) return -errno;
    io->mask = mask;
    return 0;
}

int loop_set(loop *l, loop_io *io, uint32_t mask) {
    if (io->mask == mask) return 0;
    struct epoll_event ev = {.events = mask, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) != 0) return -errno;
    io->mask = mask;
    return 0;
}

void loop_del(loop *l, loop_io *io) {
    if (io->fd >= 0) epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->mask = 0;
}

int loop_poll(loop *l, int timeout_ms) {
    int n = epoll_wait(l->epfd, l->events, LOOP_BATCH, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        loop_io *io = l->events[i].data.ptr;
        io->fn(io, l->events[i].events);
    }
    return n;
}
