#!/usr/bin/env python3
"""test_event_loop.py CHASH_PROXY - the two event loops (issue 18):
--event-loop epoll and io_uring, each through what differs between them.
On io_uring the loop does the sockets' I/O itself (a copy staged per
connection, at most 256 KB, and one receive at a time into a shared ring of
buffers), so each is driven past those sizes: values of several MB both
ways, a pipeline of 20,000 commands, a client that asks for 20 MB of
replies and reads none for a second (a slow reader must not hold the
buffers or the worker), one that leaves with megabytes owed, a reply and
then a close (QUIT: the reply must arrive before the FIN), a half-close.
Every case has a bystander on the pool that must see no error and no delay.
The whole proxy suite also runs on both loops (make test-clang: epoll).

The choice itself: --event-loop and CHASH_PROXY_EVENT_LOOP refuse an
unknown name (exit 2), the log says which loop runs, and where the kernel
refuses io_uring (io_uring_disabled), asking for it fails to start with the
reason and auto falls back to epoll.
"""
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Conn, SetGetBystander, check, check_eq, enc, free_port,  # noqa: E402
                     proxy_binary, run)

BIN = proxy_binary()


def uring_built():
    """Whether this build has the io_uring loop (-V says; CHASH_PROXY_URING)."""
    out = subprocess.run([BIN, "-V"], capture_output=True, text=True).stdout
    check("event loops:" in out, "-V names the event loops: %r" % out)
    return "io_uring" in out


def uring_allowed():
    """Whether io_uring can run here: built in, a kernel with provided
    buffer rings (5.19), and no io_uring_disabled."""
    if not uring_built():
        return False
    release = tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
    if release < (5, 19):
        return False
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            return f.read().strip() == "0"
    except OSError:
        return True  # kernels before 6.6 have no switch


def pool(env, kind, workers=2):
    servers = [env.redis()[0] for _ in range(3)]
    listen = free_port()
    conf = ("el:\n  listen: 127.0.0.1:%d\n  redis: true\n  distribution: ketama\n"
            "  hash: fnv1a_64\n  servers:\n" % listen
            + "".join("   - 127.0.0.1:%d:1 s%d\n" % (p, i) for i, p in enumerate(servers)))
    env.proxy(BIN, conf, [listen], workers=workers, extra=["--event-loop", kind, "-v", "6"])
    log = os.path.join(env.dir, "proxy-%d.log" % listen)
    return listen, log


def log_says(log, text, timeout=5.0):
    """Whether the log has text within timeout (the line that names the
    loop comes just after the listeners open)."""
    deadline = time.time() + timeout
    while True:
        got = open(log).read()
        if text in got or time.time() > deadline:
            return text in got, got


def test_choice(env):
    p = subprocess.run([BIN, "--event-loop", "kqueue", "-t", "-c", "/dev/null"],
                       capture_output=True, text=True)
    check_eq(p.returncode, 2, "--event-loop kqueue: a usage error")
    check("expected auto, io_uring or epoll" in p.stderr, "says what it takes: %r" % p.stderr)
    p = subprocess.run([BIN, "-t", "-c", "/dev/null"], capture_output=True, text=True,
                       env=dict(os.environ, CHASH_PROXY_EVENT_LOOP="select"))
    check_eq(p.returncode, 2, "CHASH_PROXY_EVENT_LOOP=select: a usage error")
    check("CHASH_PROXY_EVENT_LOOP" in p.stderr, "names the variable: %r" % p.stderr)
    for kind, said in (("epoll", "(epoll)"), ("auto", "(io_uring)" if uring_allowed() else "(epoll)")):
        _, log = pool(env, kind, workers=1)
        has, text = log_says(log, said)
        check(has, "--event-loop %s: the log says %s: %r" % (kind, said, text[-300:]))
    if not uring_allowed():
        port = free_port()
        path = env.write("refused.yml", "r:\n  listen: 127.0.0.1:%d\n  servers:\n"
                         "   - 127.0.0.1:1:1 a\n" % port)
        p = subprocess.run([BIN, "-c", path, "-s", "0", "--event-loop", "io_uring"],
                           capture_output=True, text=True, timeout=10)
        check_eq(p.returncode, 1, "io_uring asked for where the kernel refuses it")
        check("cannot create an event loop (io_uring)" in p.stdout + p.stderr,
              "says why: %r" % (p.stdout + p.stderr))


def read_until_closed(c, timeout=10.0):
    c.s.settimeout(timeout)
    while True:
        data = c.s.recv(1 << 20)
        if not data:
            return c.buf
        c.buf += data


def loop_cases(env, kind):
    listen, log = pool(env, kind)
    check(log_says(log, "(%s)" % kind)[0], "the log says %s" % kind)
    by = SetGetBystander(listen, "by-" + kind)
    c = Conn(listen, timeout=20)

    # Values far past the stage (256 KB) and a receive buffer (8 KB).
    big = os.urandom(3 << 20)
    check_eq(c.call("SET", b"big", big), b"+OK", "%s: SET of 3 MB" % kind)
    check(c.call("GET", b"big") == big, "%s: GET of 3 MB, byte for byte" % kind)

    # A deep pipeline, answered in order.
    cmds = [("SET", "p:%d" % i, "v%d" % i) if i % 2 == 0 else ("GET", "p:%d" % (i - 1))
            for i in range(20000)]
    got = c.deep_pipeline(cmds)
    want = [b"+OK" if i % 2 == 0 else ("v%d" % (i - 1)).encode() for i in range(20000)]
    check(got == want, "%s: 20,000 pipelined commands answered in order" % kind)

    # A slow reader: 20 MB of replies asked for, none read for a second.
    slow = Conn(listen, timeout=20)
    slow.send_async(enc("GET", "big") * 7)
    time.sleep(1.0)
    check(not by.errors, "%s: the bystander while a reader is slow: %s" % (kind, by.errors[:2]))
    for i in range(7):
        check(slow.reply() == big, "%s: slow reader's reply %d, byte for byte" % (kind, i))
    slow.close()

    # One that leaves with megabytes owed to it.
    for _ in range(5):
        gone = Conn(listen)
        gone.send(enc("GET", "big") * 4)
        time.sleep(0.05)
        gone.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        gone.close()  # a reset

    # A reply, then the close: the reply first.
    q = Conn(listen)
    q.send(enc("SET", "q", "1") + enc("GET", "q") + enc("QUIT"))
    check_eq(read_until_closed(q), b"+OK\r\n$1\r\n1\r\n+OK\r\n", "%s: replies, then the close" % kind)
    q.close()

    # A half-close: what was asked is answered, then closed.
    h = Conn(listen)
    h.send(enc("GET", "big") + enc("GET", "q"))
    h.s.shutdown(socket.SHUT_WR)
    out = read_until_closed(h)
    head = b"$%d\r\n" % len(big)
    check(out == head + big + b"\r\n$1\r\n1\r\n", "%s: a half-closed client's replies (%d bytes)"
          % (kind, len(out)))
    h.close()

    check_eq(c.call("PING"), b"+PONG", "%s: the first client still served" % kind)
    c.close()
    by.done("(%s)" % kind)


def test_epoll(env):
    loop_cases(env, "epoll")


def test_io_uring(env):
    if not uring_allowed():
        print("  io_uring not built in, or io_uring_disabled set: test_choice checked the refusal")
        return
    loop_cases(env, "io_uring")


if __name__ == "__main__":
    run([test_choice, test_epoll, test_io_uring])
