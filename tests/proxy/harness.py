"""harness.py - start real redis-server, memcached, nutcracker and chash-proxy
on free loopback ports in a temporary directory, and talk raw RESP / memcached
ASCII to them. Servers are stopped by PID; nothing leaves 127.0.0.1.
"""
import collections
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CHECKS = 0


def check(cond, what):
    global CHECKS
    CHECKS += 1
    if not cond:
        raise AssertionError(what)


def check_eq(got, want, what=""):
    global CHECKS
    CHECKS += 1
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def _port_range():
    """Where free ports are picked: below the kernel's ephemeral range.
    A port the kernel hands out for bind(0) is one it also hands out as the
    source port of any outgoing connection on the machine, so between our
    pick and the server's bind another test's connect() (thousands a second
    under ctest -j2; wait_port alone makes one per try) could take it, and
    the server exits (nutcracker with status 1 and no word). No connect()
    takes a port below the ephemeral range."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    if low > 12000:
        return 10000, low - 1
    return 0, 0  # an unusual range: let the kernel pick


_rng = random.Random()
# Ports this process handed out lately: a port picked for one server and
# not yet bound by it is free again at the next pick, and `listen, stats =
# free_port(), free_port()` once got the same port twice (one CI run: the
# proxy's stats port taken by its own listener, exit 1).
_handed = collections.deque(maxlen=4096)
_handed_set = set()


def _hand_out(port):
    if len(_handed) == _handed.maxlen:
        _handed_set.discard(_handed[0])
    _handed.append(port)
    _handed_set.add(port)


def free_ports(count):
    """count distinct free ports, outside the ephemeral range when there is
    room (each socket stays bound until all are picked, so none is picked
    twice; a port another test holds, or with a connection in TIME_WAIT,
    fails the bind and is skipped; nor is one this process handed out
    lately)."""
    lo, hi = _port_range()
    socks = []
    for _ in range(100 * count):
        if len(socks) == count:
            break
        port = _rng.randint(lo, hi) if hi else 0
        if port and port in _handed_set:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    while len(socks) < count:  # no luck in our range: the kernel's pick
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    for port in ports:
        _hand_out(port)
    return ports


def free_port():
    return free_ports(1)[0]


def wait_port(port, proc=None, timeout=5.0, host="127.0.0.1"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("port %d never opened" % port)


class Env:
    """Owns a temp dir and every process started in it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="chash-proxy-test-")
        self.procs = []
        self.proxies = []

    def spawn(self, argv, port=None, log=None, host="127.0.0.1", nofile=None):
        out = open(os.path.join(self.dir, log or (os.path.basename(argv[0]) + ".log")), "ab")
        limit = None
        if nofile:  # the child's descriptor limit, set before it runs
            import resource
            limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))  # noqa
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir,
                             preexec_fn=limit)
        out.close()
        self.procs.append(p)
        if port:
            wait_port(port, p, host=host)
        return p

    def redis(self, extra=(), port=None):
        """A redis-server on a free port (or on `port`, to restart one)."""
        port = port or free_port()
        p = self.spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no", "--dir", self.dir,
                        "--dbfilename", "dump-%d.rdb" % port] + list(extra), port,
                       "redis-%d.log" % port)
        return port, p

    def memcached(self, port=None, host="127.0.0.1"):
        """A memcached on a free port (or on host:port, loopback only)."""
        port = port or free_port()
        argv = ["memcached", "-p", str(port), "-U", "0", "-l", host, "-t", "1"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        log = "memcached-%d.log" % port if host == "127.0.0.1" else "memcached-%s-%d.log" % (
            host, port)
        p = self.spawn(argv, port, log, host=host)
        return port, p

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def proxy(self, binary, conf_text, listen_ports, workers=1, stats_port=0, extra=(),
              nofile=None):
        path = self.write("proxy-%d.yml" % listen_ports[0], conf_text)
        argv = [binary, "-c", path, "--workers", str(workers), "-s", str(stats_port)] + list(extra)
        p = self.spawn(argv, None, "proxy-%d.log" % listen_ports[0], nofile=nofile)
        self.proxies.append((p, os.path.join(self.dir, "proxy-%d.log" % listen_ports[0])))
        for port in listen_ports:
            wait_port(port, p)
        return p

    def check_proxies(self):
        """Every proxy stops cleanly on SIGTERM: exit 0, and no sanitizer
        report in its log."""
        for p, log in self.proxies:
            check(p.poll() is None, "proxy died (exit %s)" % p.returncode)
            self.stop(p)
            text = open(log, errors="replace").read()
            check("Sanitizer" not in text and "runtime error" not in text,
                  "sanitizer report in %s:\n%s" % (log, text[-4000:]))
            check_eq(p.returncode, 0, "proxy exit status")

    def nutcracker(self, conf_text, listen_ports):
        path = self.write("nutcracker-%d.yml" % listen_ports[0], conf_text)
        stats = free_port()
        p = self.spawn(["nutcracker", "-c", path, "-s", str(stats), "-a", "127.0.0.1"], None,
                       "nutcracker-%d.log" % listen_ports[0])
        for port in listen_ports:
            wait_port(port, p)
        return p

    def stop(self, p, force=False):
        """SIGTERM (proxies: they must exit cleanly), or SIGKILL for the
        throwaway servers (memcached takes a second to honour SIGTERM)."""
        if p.poll() is None:
            p.send_signal(signal.SIGKILL if force else signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def close(self):
        for p in self.procs:
            self.stop(p, force=True)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- RESP ------------------------------------------------------------------

def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Closed(Exception):
    pass


class Conn:
    """A raw connection with a reply reader for RESP or memcached."""

    def __init__(self, port, timeout=5.0, host="127.0.0.1", tls=None):
        """`tls`: an ssl.SSLContext to speak TLS with (the name checked is
        "localhost")."""
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            self.s = tls.wrap_socket(self.s, server_hostname="localhost")
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        data = self.s.recv(1 << 20)
        if not data:
            raise Closed()
        self.buf += data

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def reply(self):
        """One RESP reply: bytes for bulk/status ('+OK' kept as b'+OK'),
        ('err', text) for errors, int, None, or a list."""
        line = self.line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return b"+" + rest
        if t == b"-":
            return ("err", rest.decode("latin-1"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.exact(n + 2)
            return data[:-2]
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.reply() for _ in range(n)]
        raise AssertionError("bad reply line %r" % line)

    def call(self, *args):
        self.send(enc(*args))
        return self.reply()

    def pipeline(self, cmds):
        self.send(b"".join(enc(*c) for c in cmds))
        return [self.reply() for _ in cmds]

    def send_async(self, data):
        """Sends data from a thread, so that a deep pipeline cannot deadlock
        against our own unread replies. Returns the thread; a send error
        (the peer closed) is kept in self.send_error."""
        self.send_error = None

        def go():
            try:
                self.s.sendall(data)
            except OSError as e:
                self.send_error = e

        t = threading.Thread(target=go, daemon=True)
        t.start()
        return t

    def deep_pipeline(self, cmds):
        """Like pipeline, for any depth: writes while it reads."""
        t = self.send_async(b"".join(enc(*c) for c in cmds))
        got = [self.reply() for _ in cmds]
        t.join()
        return got

    def is_closed(self, timeout=2.0):
        """True when the peer closes (after any pending bytes)."""
        self.s.settimeout(timeout)
        try:
            while True:
                data = self.s.recv(65536)
                if not data:
                    return True
                self.buf += data
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def mc_reply(self, retrieval=False):
        """A memcached reply as bytes (whole, with CRLFs)."""
        out = b""
        while True:
            line = self.line()
            out += line + b"\r\n"
            if not retrieval:
                return out
            if line.startswith(b"VALUE "):
                n = int(line.split()[3])
                out += self.exact(n + 2)
                continue
            return out

    def close(self):
        self.s.close()


class SetGetBystander:
    """A client on the same pool as a case: SET then GET of its own keys, in
    a thread, for the duration of the case; every reply must be right, and
    none slower than a second (nothing it asked waited behind another
    client). `tag`: its keys carry this hash tag (one server); `db`: it
    SELECTs that database first; `pause`: seconds between rounds;
    `max_wait`: the slowest round allowed (None: not checked); `tls`: an
    ssl.SSLContext to connect with. hold() keeps
    it still while a case reads counters it would move; go() lets it on."""

    def __init__(self, port, name, tag=None, db=None, pause=0.0, max_wait=1.0, tls=None):
        self.c = Conn(port, tls=tls)
        if db is not None:
            check_eq(self.c.call("SELECT", db), b"+OK", "bystander SELECT %d" % db)
        self.name, self.tag, self.pause, self.max_wait = name, tag, pause, max_wait
        self.stop = threading.Event()
        self.held = threading.Event()
        self.idle = threading.Event()
        self.errors = []
        self.count = 0
        self.slowest = 0.0
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        i = 0
        while not self.stop.is_set():
            if self.held.is_set():
                self.idle.set()
                time.sleep(0.005)
                continue
            self.idle.clear()
            k, v = "by:%s:%d" % (self.name, i % 50), "v%d" % i
            if self.tag:
                k = "{%s}%s" % (self.tag, k)
            t0 = time.time()
            try:
                got = self.c.pipeline([("SET", k, v), ("GET", k)])
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))
                return
            self.slowest = max(self.slowest, time.time() - t0)
            if got != [b"+OK", v.encode()]:
                self.errors.append("%s: %r" % (k, got))
            self.count += 1
            i += 1
            if self.pause:
                time.sleep(self.pause)

    def hold(self):
        self.idle.clear()
        self.held.set()
        check(self.idle.wait(10), "bystander %s holds still" % self.name)

    def go(self):
        self.held.clear()

    def done(self, note=""):
        """Stops it and checks what it saw; `note` goes with a failure."""
        self.stop.set()
        self.t.join(10)
        check(not self.errors, "bystander %s: %s %s" % (self.name, self.errors[:3], note))
        check(self.count > 0, "bystander %s ran" % self.name)
        if self.max_wait is not None:
            check(self.slowest < self.max_wait, "bystander %s waited %.2fs %s"
                  % (self.name, self.slowest, note))
        self.c.close()


class FakeServer(threading.Thread):
    """A server on a free port that answers every request (one per line
    for memcached; one RESP array for redis) with whatever answer(request)
    returns: bytes to send, None to close the connection, or ("close",
    bytes) to send them and close."""

    def __init__(self, is_redis, answer):
        super().__init__(daemon=True)
        self.is_redis, self.answer = is_redis, answer
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        c = Conn.__new__(Conn)
        c.s, c.buf = conn, b""
        try:
            while True:
                if self.is_redis:
                    req = c.reply()  # a request is an array of bulk strings
                else:
                    req = c.line().split(b" ")
                    if req[0] in (b"set", b"add", b"replace", b"append", b"prepend", b"cas"):
                        c.exact(int(req[4]) + 2)
                self.requests.append(req)
                out = self.answer(req)
                if out is None:
                    conn.close()
                    return
                if isinstance(out, tuple):  # ("close", last words)
                    conn.sendall(out[1])
                    conn.close()
                    return
                conn.sendall(out)
        except (Closed, OSError, AssertionError):
            conn.close()

    def close(self):
        self.sock.close()


def raw_stats(port, request=None):
    """Everything the stats port sends (for `request`, if any) until it closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if request is not None:
        s.sendall(request)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def tag_of(listen, name):
    """A hash tag ("t17") whose keys the proxy on `listen` places on server
    (or shard) `name`, by PROXY LOCATE (the pool needs hash_tag "{}")."""
    c = Conn(listen)
    for i in range(2000):
        got = c.call("PROXY", "LOCATE", "{t%d}x" % i)
        if got[0][0].decode() == name:
            c.close()
            return "t%d" % i
    raise AssertionError("no tag lands on %s" % name)


def stats_json(port):
    """The nutcracker-style stats document."""
    return json.loads(raw_stats(port))


def wait_servers(listen, count, timeout=5.0):
    """Until fresh connections (any worker) see `count` servers in PROXY RING."""
    deadline = time.time() + timeout
    seen = 0
    while time.time() < deadline:
        c = Conn(listen)
        lines = c.call("PROXY", "RING")
        c.close()
        seen = seen + 1 if len(lines) == count + 2 else 0
        if seen >= 8:
            return True
        time.sleep(0.02)
    return False


def clients_left(port, timeout=3.0):
    """Connections a redis-server still has besides ours, once they drop to
    none or `timeout` passes."""
    deadline = time.time() + timeout
    while True:
        left = Conn(port).call("CLIENT", "LIST").count(b"\n") - 1
        if left <= 0 or time.time() >= deadline:
            return left
        time.sleep(0.05)


def is_sanitized(binary):
    """True for a build with AddressSanitizer or ThreadSanitizer (slower;
    keeps freed memory)."""
    with open(binary, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


def proxy_binary():
    if len(sys.argv) < 2:
        sys.exit("usage: %s CHASH_PROXY" % sys.argv[0])
    return os.path.abspath(sys.argv[1])


def run(tests):
    env_all = []
    start = time.time()
    for t in tests:
        env = Env()
        env_all.append(env)
        t0 = time.time()
        try:
            t(env)
        except Exception:
            print("FAIL %s (logs in %s)" % (t.__name__, env.dir))
            for p in env.procs:
                if p.poll() is None:
                    continue
                print("  process %s exited %s" % (p.args[0], p.returncode))
            for name in sorted(os.listdir(env.dir)):
                if name.startswith("proxy-") and name.endswith(".log"):
                    print("--- %s" % name)
                    print(open(os.path.join(env.dir, name), errors="replace").read()[-3000:])
            for p in env.procs:
                if p.poll() is None:
                    p.kill()
            raise
        try:
            env.check_proxies()
        except Exception:
            print("FAIL %s at shutdown (logs in %s)" % (t.__name__, env.dir))
            for p in env.procs:  # the servers too: nothing outlives a failed test
                if p.poll() is None:
                    p.kill()
            raise
        env.close()
        print("ok %s (%.2fs)" % (t.__name__, time.time() - t0))
    print("%d checks passed in %.1fs" % (CHECKS, time.time() - start))
