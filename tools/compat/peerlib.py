"""peerlib.py - what the peer oracles share: free loopback ports, child
processes stopped by PID, a minimal RESP client, and the vector file writer.

Everything runs on 127.0.0.0/8; nothing is sent off the machine.
"""
import os
import signal
import socket
import subprocess
import time


def free_port(addr="127.0.0.1"):
    """A TCP port that was free on addr a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def port_is_free(addr, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((addr, port))
        except OSError:
            return False
        return True


def connect(addr, port, timeout):
    """A TCP connection to addr:port, or a unix socket at addr if port is None."""
    if port is None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(addr)
        except OSError:
            s.close()
            raise
        return s
    return socket.create_connection((addr, port), timeout=timeout)


def wait_listening(addr, port, proc, timeout=10.0):
    """Waits until addr:port (or unix socket addr) accepts a connection;
    fails if proc exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (proc.args[0], proc.returncode))
        try:
            with connect(addr, port, 0.5):
                return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("%s:%s never started listening" % (addr, port))


class Children:
    """Processes we started; stop() ends each one by its own PID."""

    def __init__(self):
        self.procs = []

    def start(self, argv, **kw):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p)


class Resp:
    """Just enough RESP2 to SET, KEYS, FLUSHALL and PING, pipelined."""

    def __init__(self, addr, port):
        self.sock = connect(addr, port, 10)
        self.buf = b""

    def close(self):
        self.sock.close()

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise RuntimeError("connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return rest
        if kind == b"-":
            raise RuntimeError("error reply: %r" % rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise RuntimeError("bad reply line %r" % line)

    def pipeline(self, commands, batch=200):
        """Sends commands in batches; returns their replies in order."""
        replies = []
        for i in range(0, len(commands), batch):
            part = commands[i:i + batch]
            self.sock.sendall(b"".join(self.encode(*c) for c in part))
            replies.extend(self.reply() for _ in part)
        return replies


def write_case(f, scheme, algo, hash_name, tag, nodes, owners, comment=None):
    """One case of the compat vector format (tests/vectors/README.md).

    nodes: [(name bytes, weight)] in the peer's order; owners: [(key bytes,
    owner name bytes)].
    """
    if comment:
        f.write("# %s\n" % comment)
    f.write("case %s %s %s %s %d\n" % (scheme, algo, hash_name,
                                      tag.hex() if tag else "-", len(nodes)))
    for name, weight in nodes:
        f.write("node %s %d\n" % (name.hex(), weight))
    for key, owner in owners:
        f.write("key %s %s\n" % (key.hex(), owner.hex()))
    f.write("end\n")
