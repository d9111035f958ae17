/*
 * loop_uring.c - io_uring(7) behind loop.h.
 *
 * Why: at one request per client turn (-P1) the epoll loop makes about two
 * system calls a request (read, write, and the wait shared by a batch).
 * Here a loop turn is one io_uring_enter: it submits every send and every
 * receive the turn produced and waits for the next completions.
 *
 * Each registration has a loop_reg, owned by the loop and freed only when
 * the kernel has nothing of it left (its completions carry the reg's
 * address), so an owner may go away at any time.
 *
 * LOOP_STREAM registrations: one receive at a time, armed while the owner
 * asks for reads and nothing is waiting; it takes a buffer from the
 * worker's provided-buffer ring only when bytes arrive (an idle connection
 * holds no buffer). What the owner does not take during its event is
 * copied aside and the buffer goes back at once, so a paused client holds
 * at most one buffer's worth, never the ring. Sends: loop_send copies into
 * the reg's stage (at most STAGE_MAX bytes: the backpressure the socket
 * buffer gave); one send at a time carries everything staged when the turn
 * ends. Other registrations: a one-shot poll, armed again after each event
 * while the owner asks, which is level-triggered readiness.
 *
 * A closed fd is closed after the turn's submission (its number must not
 * be reused while an unsubmitted entry names it), and a stream's close
 * waits for its stage to be written (LOOP_LINGER_MS at most).
 */
#define _GNU_SOURCE
#include "loop_uring.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RING_ENTRIES 1024u
#define BUF_COUNT 512u /* a power of two */
#define BUF_SIZE 8192u
#define BUF_GROUP 0
#define STAGE_MIN 4096u
#define STAGE_MAX (256u * 1024u)
#define STAGE_KEEP STAGE_MIN /* a drained stage larger than this is freed */
#define CQE_BATCH 256u
#define BULK_SEND 16384u /* a send this large goes out at once, uncopied */

/* What a completion was: the low bits of its user_data (regs are aligned). */
enum { OP_POLL = 1, OP_RECV = 2, OP_SEND = 3, OP_CANCEL = 4, OP_MASK = 7 };

struct loop_reg {
    loop_io *io; /* NULL once unregistered */
    int fd;      /* -1 once closed */
    uint32_t want;
    uint32_t poll_mask; /* the armed poll's mask; 0: none armed */
    bool is_stream;
    bool is_exclusive;
    bool is_poll_cancelled; /* a cancel is on its way to the armed poll */
    bool is_recv_armed;
    bool is_dirty, is_ready, is_closing;
    bool is_bulk; /* the last receive filled its buffer: more is likely there */
    int in_end;   /* 0: open; 1: EOF; < 0: -errno of the last receive */
    int send_err; /* errno of a failed send: the connection is broken */
    unsigned inflight; /* completions still to come */
    /* Received and not taken: the buffer being delivered, then a copy. */
    const char *cur;
    size_t cur_len;
    char *in;
    size_t in_off, in_len;
    /* Staged to send: [out_off, out_off + send_len) is in flight. */
    char *out;
    size_t out_cap, out_off, out_len, send_len;
    uint64_t linger_until_ms;
    loop_reg *next_dirty, *next_ready, *next_closing;
    loop_reg *prev_all, *next_all;
};

struct uring {
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    char *bufs;
    loop_reg *dirty, *ready, *closing, *all;
    int *close_fds;
    size_t close_count, close_cap;
    struct done {
        uint64_t user_data;
        int32_t res;
        uint32_t flags;
    } cqes[CQE_BATCH];
};

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int uring_create(uring **out) {
    uring *u = calloc(1, sizeof *u);
    if (!u) return -ENOMEM;
    /* Completions are run when the worker asks for them (no interrupts
     * between turns); kernels before 6.1 get the plain ring. */
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                         IORING_SETUP_R_DISABLED};
    int rc = io_uring_queue_init_params(RING_ENTRIES, &u->ring, &p);
    if (rc < 0) {
        memset(&p, 0, sizeof p);
        rc = io_uring_queue_init_params(RING_ENTRIES, &u->ring, &p);
    }
    if (rc < 0) {
        free(u);
        return rc;
    }
    if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_EXT_ARG)) {
        io_uring_queue_exit(&u->ring);
        free(u);
        return -ENOSYS;
    }
    size_t ring_bytes = BUF_COUNT * sizeof(struct io_uring_buf);
    void *mem = NULL;
    if (posix_memalign(&mem, (size_t)sysconf(_SC_PAGESIZE), ring_bytes) != 0 ||
        !(u->bufs = malloc((size_t)BUF_COUNT * BUF_SIZE))) {
        free(mem);
        io_uring_queue_exit(&u->ring);
        free(u);
        return -ENOMEM;
    }
    u->br = mem;
    io_uring_buf_ring_init(u->br);
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)u->br, .ring_entries = BUF_COUNT,
                                   .bgid = BUF_GROUP};
    rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (rc < 0) {
        uring_free(u);
        return rc;
    }
    for (unsigned i = 0; i < BUF_COUNT; i++)
        io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(BUF_COUNT), (int)i);
    io_uring_buf_ring_advance(u->br, (int)BUF_COUNT);
    *out = u;
    return 0;
}

static void reg_unlink_free(uring *u, loop_reg *r) {
    if (r->prev_all)
        r->prev_all->next_all = r->next_all;
    else
        u->all = r->next_all;
    if (r->next_all) r->next_all->prev_all = r->prev_all;
    free(r->in);
    free(r->out);
    free(r);
}

/* Frees r once nothing refers to it: no owner, no completion to come, on
 * no list. */
static void reg_free_if_done(uring *u, loop_reg *r) {
    if (!r->io && !r->inflight && !r->is_closing && !r->is_dirty && !r->is_ready)
        reg_unlink_free(u, r);
}

void uring_free(uring *u) {
    if (!u) return;
    /* Lingering closes end now; the owners' own fds are theirs. */
    for (loop_reg *r = u->all; r; r = r->next_all)
        if (!r->io && r->fd >= 0) close(r->fd);
    for (size_t i = 0; i < u->close_count; i++) close(u->close_fds[i]);
    io_uring_queue_exit(&u->ring);
    while (u->all) {
        if (u->all->io) u->all->io->reg = NULL;
        reg_unlink_free(u, u->all);
    }
    free(u->close_fds);
    free(u->br);
    free(u->bufs);
    free(u);
}

/* An entry; when the queue is full, what is in it goes to the kernel
 * first (the one place a turn makes a second system call). */
static struct io_uring_sqe *sqe_get(uring *u, loop_reg *r) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) {
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
        if (!sqe) return NULL;
    }
    r->inflight++;
    return sqe;
}

static void sqe_tag(struct io_uring_sqe *sqe, loop_reg *r, int op) {
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)r | (uint64_t)op);
}

static void cancel(uring *u, loop_reg *r, int op) {
    struct io_uring_sqe *sqe = sqe_get(u, r);
    if (!sqe) return;
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)r | (uint64_t)op, 0);
    sqe_tag(sqe, r, OP_CANCEL);
}

static void mark_dirty(uring *u, loop_reg *r) {
    if (r->is_dirty) return;
    r->is_dirty = true;
    r->next_dirty = u->dirty;
    u->dirty = r;
}

static size_t staged(const loop_reg *r) { return r->out_len - r->out_off; }

static bool has_input(const loop_reg *r) {
    return r->in_len > r->in_off || r->cur_len || r->in_end || r->send_err;
}

/* What the owner of r may be told now without the kernel. */
static uint32_t ready_events(const loop_reg *r) {
    if (!r->io || !r->is_stream) return 0;
    uint32_t ev = 0;
    if ((r->want & LOOP_READ) && has_input(r)) ev |= LOOP_READ;
    if ((r->want & LOOP_WRITE) && staged(r) && staged(r) < STAGE_MAX) ev |= LOOP_WRITE;
    if (r->send_err) ev |= LOOP_ERROR;
    return ev;
}

/* Arms what r's owner asks for (before the turn's submission). */
static void arm(uring *u, loop_reg *r) {
    if (r->fd < 0) return;
    if (r->is_stream && !r->send_len && staged(r) && !r->send_err) {
        struct io_uring_sqe *sqe = sqe_get(u, r);
        if (sqe) {
            r->send_len = staged(r);
            io_uring_prep_send(sqe, r->fd, r->out + r->out_off, r->send_len, MSG_NOSIGNAL);
            sqe_tag(sqe, r, OP_SEND);
        }
    }
    if (!r->io) return;
    if (ready_events(r) && !r->is_ready) {
        r->is_ready = true;
        r->next_ready = u->ready;
        u->ready = r;
    }
    uint32_t poll_want = r->want & (LOOP_READ | LOOP_WRITE);
    if (r->is_stream) {
        if ((r->want & LOOP_READ) && !has_input(r) && !r->is_recv_armed) {
            struct io_uring_sqe *sqe = sqe_get(u, r);
            if (sqe) {
                io_uring_prep_recv(sqe, r->fd, NULL, BUF_SIZE, 0);
                sqe->flags |= IOSQE_BUFFER_SELECT;
                sqe->buf_group = BUF_GROUP;
                sqe_tag(sqe, r, OP_RECV);
                r->is_recv_armed = true;
            }
        }
        /* Writability from the kernel only while nothing is staged (a
         * connect's end, or a socket the owner found full). */
        poll_want = (r->want & LOOP_WRITE) && !staged(r) ? LOOP_WRITE : 0;
    }
    if (!poll_want) return;
    if (r->poll_mask) {
        /* Armed for less than is asked: cancelled, armed again on its
         * completion (one poll at a time, so the cancel names it). */
        if ((poll_want & ~r->poll_mask) && !r->is_poll_cancelled) {
            cancel(u, r, OP_POLL);
            r->is_poll_cancelled = true;
        }
        return;
    }
    struct io_uring_sqe *sqe = sqe_get(u, r);
    if (!sqe) return;
    io_uring_prep_poll_add(sqe, r->fd, poll_want | (r->is_exclusive ? EPOLLEXCLUSIVE : 0));
    sqe_tag(sqe, r, OP_POLL);
    r->poll_mask = poll_want;
}

int uring_add(uring *u, loop_io *io, uint32_t mask) {
    loop_reg *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    r->io = io;
    r->fd = io->fd;
    r->want = mask & (LOOP_READ | LOOP_WRITE);
    r->is_stream = (mask & LOOP_STREAM) != 0;
    r->is_exclusive = (mask & LOOP_EXCLUSIVE) != 0;
    r->next_all = u->all;
    if (u->all) u->all->prev_all = r;
    u->all = r;
    io->reg = r;
    io->mask = r->want;
    mark_dirty(u, r);
    return 0;
}

int uring_set(uring *u, loop_io *io, uint32_t mask) {
    loop_reg *r = io->reg;
    if (!r || io->mask == mask) return 0;
    io->mask = r->want = mask;
    mark_dirty(u, r);
    return 0;
}

static void fd_close_later(uring *u, loop_reg *r) {
    if (r->fd < 0) return;
    if (u->close_count == u->close_cap) {
        size_t cap = u->close_cap ? u->close_cap * 2 : 64;
        int *fds = realloc(u->close_fds, cap * sizeof *fds);
        if (!fds) {
            /* Not later, then: an entry naming the number may still be
             * unsubmitted, so submit first. */
            io_uring_submit(&u->ring);
            close(r->fd);
            r->fd = -1;
            return;
        }
        u->close_fds = fds;
        u->close_cap = cap;
    }
    u->close_fds[u->close_count++] = r->fd;
    r->fd = -1;
}

void uring_del(uring *u, loop_io *io, int is_close) {
    loop_reg *r = io->reg;
    io->mask = 0;
    if (!r) return;
    io->reg = NULL;
    r->io = NULL;
    r->want = 0;
    if (r->is_recv_armed) cancel(u, r, OP_RECV);
    if (r->poll_mask && !r->is_poll_cancelled) {
        cancel(u, r, OP_POLL);
        r->is_poll_cancelled = true;
    }
    if (!is_close) {
        r->fd = -1; /* the owner's still */
    } else if (r->is_stream && staged(r) && !r->send_err) {
        r->is_closing = true; /* closed once written */
        r->linger_until_ms = now_ms() + LOOP_LINGER_MS;
        r->next_closing = u->closing;
        u->closing = r;
        mark_dirty(u, r);
    } else {
        fd_close_later(u, r);
    }
    if (is_close) io->fd = -1;
    /* Freed by the next turn, never here: the caller may be r's own event. */
    mark_dirty(u, r);
}

ssize_t uring_recv(uring *u, loop_io *io, void *dst, size_t len) {
    loop_reg *r = io->reg;
    if (!r) {
        errno = EBADF;
        return -1;
    }
    size_t n = 0;
    if (r->in_len > r->in_off) {
        n = r->in_len - r->in_off < len ? r->in_len - r->in_off : len;
        memcpy(dst, r->in + r->in_off, n);
        r->in_off += n;
        if (r->in_off == r->in_len) {
            free(r->in);
            r->in = NULL;
            r->in_off = r->in_len = 0;
        }
    } else if (r->cur_len) {
        n = r->cur_len < len ? r->cur_len : len;
        memcpy(dst, r->cur, n);
        r->cur += n;
        r->cur_len -= n;
    }
    mark_dirty(u, r);
    /* A bulk transfer (a large value): read on directly while the socket
     * has more, one system call per READ_CHUNK-sized read as on epoll,
     * instead of a loop turn per 8 KB buffer. Never while a receive is
     * armed (it would take bytes out of order). */
    if (r->is_bulk && n < len && !r->cur_len && !r->in_end && !r->is_recv_armed && r->fd >= 0) {
        size_t room = len - n;
        ssize_t k = recv(r->fd, (char *)dst + n, room, MSG_DONTWAIT);
        if (k > 0) {
            n += (size_t)k;
            r->is_bulk = (size_t)k == room;
        } else if (k == 0) {
            r->in_end = 1;
            r->is_bulk = false;
        } else {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) r->in_end = -errno;
            r->is_bulk = false;
        }
    }
    if (n) return (ssize_t)n;
    if (r->in_end == 1) return 0;
    errno = r->in_end < 0 ? -r->in_end : r->send_err ? r->send_err : EAGAIN;
    return -1;
}

ssize_t uring_send(uring *u, loop_io *io, const void *src, size_t len) {
    loop_reg *r = io->reg;
    if (!r || r->send_err) {
        errno = r ? r->send_err : EBADF;
        return -1;
    }
    /* Bulk (a large value, or a turn's worth for a server): written now
     * with one system call, as on epoll, instead of copied into the stage;
     * what the socket does not take stays the owner's (it asks for
     * LOOP_WRITE, and the kernel's writability answers). Only with nothing
     * staged or in flight, so bytes keep their order. */
    if (len >= BULK_SEND && !staged(r) && !r->send_len && r->fd >= 0) {
        ssize_t k = send(r->fd, src, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k >= 0) return k;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) r->send_err = errno;
        errno = r->send_err ? r->send_err : EAGAIN;
        return -1;
    }
    size_t take = STAGE_MAX - staged(r);
    if (take > len) take = len;
    if (r->out_cap - r->out_len < take) {
        if (!r->send_len) {
            /* Nothing in flight: the stage may move. */
            if (r->out_off) memmove(r->out, r->out + r->out_off, staged(r));
            r->out_len -= r->out_off;
            r->out_off = 0;
            size_t need = r->out_len + take;
            if (r->out_cap < need) {
                size_t cap = r->out_cap ? r->out_cap : STAGE_MIN;
                while (cap < need) cap *= 2;
                if (cap > STAGE_MAX) cap = STAGE_MAX;
                char *out = realloc(r->out, cap);
                if (!out) {
                    errno = ENOMEM;
                    return -1;
                }
                r->out = out;
                r->out_cap = cap;
            }
        } else {
            take = r->out_cap - r->out_len;
        }
    }
    if (!take) {
        errno = EAGAIN;
        return -1;
    }
    memcpy(r->out + r->out_len, src, take);
    r->out_len += take;
    mark_dirty(u, r);
    return (ssize_t)take;
}

static void buf_recycle(uring *u, unsigned bid) {
    io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(BUF_COUNT), 0);
    io_uring_buf_ring_advance(u->br, 1);
}

/* Bytes the owner did not take go aside so the buffer goes back now. */
static void keep_rest(loop_reg *r) {
    if (!r->cur_len) return;
    char *in = malloc(r->cur_len);
    if (in) {
        memcpy(in, r->cur, r->cur_len);
        r->in = in;
        r->in_off = 0;
        r->in_len = r->cur_len;
    } else {
        r->in_end = -ENOMEM;
    }
    r->cur = NULL;
    r->cur_len = 0;
}

static int on_recv(uring *u, loop_reg *r, const struct done *cqe) {
    int res = cqe->res;
    r->is_recv_armed = false;
    bool has_buf = (cqe->flags & IORING_CQE_F_BUFFER) != 0;
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    int told = 0;
    if (res > 0 && has_buf && r->io) {
        r->cur = u->bufs + (size_t)bid * BUF_SIZE;
        r->cur_len = (size_t)res;
        r->is_bulk = (size_t)res == BUF_SIZE;
        if (r->want & LOOP_READ) {
            r->io->fn(r->io, LOOP_READ);
            told = 1;
        }
        keep_rest(r);
    } else if (res == 0) {
        r->in_end = 1;
    } else if (res < 0 && res != -ECANCELED && res != -ENOBUFS && res != -EAGAIN &&
               res != -EINTR) {
        r->in_end = res;
    }
    if (has_buf) buf_recycle(u, bid);
    return told;
}

static void on_send(uring *u, loop_reg *r, int res) {
    /* Sent again from where it stopped (nothing, here); a stream socket
     * that takes no byte of a send is broken. */
    if (res == -EAGAIN || res == -EINTR) {
        res = 0;
    } else if (res <= 0) {
        r->send_err = res < 0 ? -res : EPIPE;
        r->out_off = r->out_len = 0;
    } else {
        r->out_off += (size_t)res;
    }
    r->send_len = 0;
    if (r->out_off == r->out_len) {
        r->out_off = r->out_len = 0;
        if (r->out_cap > STAGE_KEEP) {
            free(r->out);
            r->out = NULL;
            r->out_cap = 0;
        }
    }
    (void)u;
}

/* The linger of a closed stream ends: written, failed or out of time. */
static void closing_sweep(uring *u) {
    uint64_t now = 0;
    for (loop_reg **at = &u->closing; *at;) {
        loop_reg *r = *at;
        bool is_done = !staged(r) || r->send_err;
        if (!is_done) {
            if (!now) now = now_ms();
            if (now >= r->linger_until_ms) {
                if (r->send_len) cancel(u, r, OP_SEND);
                is_done = true;
            }
        }
        if (!is_done) {
            at = &r->next_closing;
            continue;
        }
        *at = r->next_closing;
        r->is_closing = false;
        fd_close_later(u, r);
        reg_free_if_done(u, r);
    }
}

static int reap(uring *u) {
    int told = 0;
    for (;;) {
        struct io_uring_cqe *ptrs[CQE_BATCH];
        unsigned n = io_uring_peek_batch_cqe(&u->ring, ptrs, CQE_BATCH);
        if (!n) break;
        /* Copied out first: a handler may submit (a full queue), and the
         * completion queue's slots are then the kernel's again. */
        for (unsigned i = 0; i < n; i++)
            u->cqes[i] = (struct done){ptrs[i]->user_data, ptrs[i]->res, ptrs[i]->flags};
        io_uring_cq_advance(&u->ring, n);
        for (unsigned i = 0; i < n; i++) {
            const struct done *cqe = &u->cqes[i];
            loop_reg *r = (loop_reg *)(uintptr_t)(cqe->user_data & ~(uint64_t)OP_MASK);
            int op = (int)(cqe->user_data & OP_MASK);
            r->inflight--;
            switch (op) {
            case OP_RECV:
                told += on_recv(u, r, cqe);
                break;
            case OP_SEND:
                on_send(u, r, cqe->res);
                break;
            case OP_POLL: {
                r->poll_mask = 0;
                r->is_poll_cancelled = false;
                uint32_t ev = cqe->res >= 0 ? (uint32_t)cqe->res : (cqe->res == -ECANCELED ? 0 : LOOP_ERROR);
                ev &= r->want | LOOP_ERROR;
                if (ev && r->io) {
                    r->io->fn(r->io, ev);
                    told++;
                }
                break;
            }
            default:
                break;
            }
            if (r->io || r->is_closing)
                mark_dirty(u, r);
            else
                reg_free_if_done(u, r);
        }
        if (n < CQE_BATCH) break;
    }
    return told;
}

int uring_poll(uring *u, int timeout_ms) {
    /* The turn's entries: every send staged, every receive and poll the
     * owners now ask for; and who is ready without the kernel. */
    while (u->dirty) {
        loop_reg *r = u->dirty;
        u->dirty = r->next_dirty;
        r->is_dirty = false;
        arm(u, r);
        reg_free_if_done(u, r);
    }
    if (u->closing) closing_sweep(u);
    if (u->ring.flags & IORING_SETUP_R_DISABLED) {
        /* Enabled by the thread that polls (SINGLE_ISSUER binds it). */
        /* (Debian's liburing 2.3 declares io_uring_enable_rings but does
         * not export it.) */
        syscall(__NR_io_uring_register, u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
        u->ring.flags &= ~IORING_SETUP_R_DISABLED;
    }
    int rc;
    if (u->close_count) {
        /* The entries naming the fds go in before the fds are closed. */
        io_uring_submit(&u->ring);
        for (size_t i = 0; i < u->close_count; i++) close(u->close_fds[i]);
        u->close_count = 0;
    }
    if (u->ready || timeout_ms == 0) {
        rc = io_uring_submit_and_get_events(&u->ring);
    } else if (timeout_ms < 0) {
        rc = io_uring_submit_and_wait(&u->ring, 1);
    } else {
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
        struct io_uring_cqe *cqe;
        rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) return rc;
    int told = reap(u);
    /* Level-triggered: who still has something to be told. */
    loop_reg *ready = u->ready;
    u->ready = NULL;
    while (ready) {
        loop_reg *r = ready;
        ready = r->next_ready;
        r->is_ready = false;
        uint32_t ev = ready_events(r);
        if (ev) {
            r->io->fn(r->io, ev);
            told++;
        }
        if (r->io || r->is_closing)
            mark_dirty(u, r);
        else
            reg_free_if_done(u, r);
    }
    return told;
}

void uring_flush(uring *u, int timeout_ms) {
    uint64_t until = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    do
        uring_poll(u, u->closing && timeout_ms > 0 ? 10 : 0);
    while (u->closing && now_ms() < until);
    /* Once more: the kernel lets go of a cancelled receive's socket (and
     * sends its FIN) only as the completion is run. */
    uring_poll(u, 0);
}
