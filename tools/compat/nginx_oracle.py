#!/usr/bin/env python3
"""nginx_oracle.py - record where the real nginx sends keys with
`hash $arg_k consistent`.

One nginx, started on loopback only, is both the servers and the proxy:
one `server { listen ADDR; return 200 "TOKEN"; }` block per backend
(127.0.0.X:PORT, and one unix socket), and for each random case an upstream
of some of them (random order and weights) behind its own location. Each key
is requested as /cN?k=KEY; the backend's token in the body says which server
nginx chose, and an X-Key response header echoes $arg_k, the exact bytes nginx
hashed. A tie case uses two server strings whose CRC-32 point chains
collide (searched at run time) with keys that land on the tied point.
Nothing here computes a placement.

Usage: nginx_oracle.py --seed N --out VECTORS [--cases C] [--keys K]
                       [--chash PATH]
With --chash, also runs `chash lookup --scheme nginx --nodes-file` on each
case's `server ... weight=N;` lines and exits 1 on the first disagreement.
Output: tests/vectors/README.md ("compat vectors"). Needs Debian nginx-light
(or nginx).
"""
import argparse
import socket
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import Children, free_port, port_is_free, wait_listening, write_case  # noqa

# Bytes nginx takes raw in a query argument value: no controls, space, DEL,
# '&' (ends the argument), '#' (fragment) or '%' (kept, but avoid escapes).
KEY_BYTES = bytes(b for b in range(0x21, 0x100) if b not in b"&#%\x7f")


def chain(server, count):
    """nginx's point chain of a server string - used only to find a tie."""
    if server[:5].lower() == b"unix:":
        host, port = server[5:], b""
    else:
        host, port = server, b""
        for j in range(len(server)):
            c = server[len(server) - 1 - j]
            if c == ord(":"):
                host, port = server[:len(server) - 1 - j], server[len(server) - j:]
                break
            if not 0x30 <= c <= 0x39:
                break
    base = zlib.crc32(host + b"\0" + port)
    prev, out = 0, []
    for _ in range(count):
        prev = zlib.crc32(prev.to_bytes(4, "little"), base)
        out.append(prev)
    return out


def find_tie(rng):
    """Two free 127.0.0.X:PORT addresses whose 160-point chains share a value."""
    seen = {}
    for _ in range(20000):
        addr, port = "127.0.0.%d" % rng.randrange(2, 250), rng.randrange(20000, 60000)
        s = ("%s:%d" % (addr, port)).encode()
        for v in chain(s, 160):
            other = seen.get(v)
            if other and other[0] != s and port_is_free(addr, port) and \
                    port_is_free(other[1], other[2]):
                return (other[1], other[2]), (addr, port), v
            seen[v] = (s, addr, port)
    raise RuntimeError("no tie found")


class Http:
    """HTTP/1.1 GETs on one kept-alive connection, the request target sent as
    raw bytes (http.client would refuse bytes >= 0x80)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _need(self, pred):
        while not pred():
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("nginx closed the connection")
            self.buf += chunk

    def get(self, target):
        self.sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: oracle\r\n\r\n")
        self._need(lambda: b"\r\n\r\n" in self.buf)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        n = int(headers.get(b"content-length", b"0"))
        self._need(lambda: len(self.buf) >= n)
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body


CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0xEDB88320 if _c & 1 else _c >> 1
    CRC_TABLE.append(_c)
# Each table entry has a distinct top byte, so one CRC step can be undone.
CRC_UNDO = {v >> 24: i for i, v in enumerate(CRC_TABLE)}


def key_with_crc(prefix, target):
    """prefix + 4 bytes whose CRC-32 is target (CRC is linear: the four bytes
    are determined), or None when those bytes are not all in KEY_BYTES."""
    want = target ^ 0xFFFFFFFF
    for _ in range(4):
        i = CRC_UNDO[want >> 24]
        want = ((want ^ CRC_TABLE[i]) << 8 | i) & 0xFFFFFFFF
    tail = ((zlib.crc32(prefix) ^ 0xFFFFFFFF) ^ want).to_bytes(4, "little")
    if any(b not in KEY_BYTES for b in tail):
        return None
    key = prefix + tail
    assert zlib.crc32(key) == target
    return key


def random_key(rng):
    n = rng.choice([1, 2, 3, 5, 8, 12, 16, 24, 40])
    if rng.random() < 0.5:
        return bytes(rng.choice(KEY_BYTES) for _ in range(n))
    return ("key:%d" % rng.randrange(10 ** 6)).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", type=int, default=30)
    ap.add_argument("--keys", type=int, default=300)
    ap.add_argument("--backends", type=int, default=40)
    ap.add_argument("--chash")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = tempfile.mkdtemp(prefix="chash-nginx-")
    ch = Children()
    started = time.monotonic()
    cli_keys = 0
    try:
        # Backends: token -> (listen address, server strings that reach it).
        backends = []
        for i in range(args.backends - 1):
            addr = "127.0.0.%d" % rng.randrange(2, 250)
            port = free_port(addr)
            backends.append(("b%d" % i, "%s:%d" % (addr, port)))
        backends.append(("unix", "unix:%s/backend.sock" % tmp))
        tie_a, tie_b, tie_value = find_tie(rng)
        backends.append(("tieA", "%s:%d" % tie_a))
        backends.append(("tieB", "%s:%d" % tie_b))

        cases = []
        plain = backends[:-2]
        for i in range(args.cases):
            n = min(rng.choice([1, 2, 3, 4, 5, 8, 10, 16, 20, 30, len(plain)]), len(plain))
            chosen = rng.sample(plain, n)
            wmode = rng.choice(["one", "small", "wide"])
            servers = []
            for token, listen in chosen:
                s = listen
                # The port's text is hashed as written: sometimes zero-padded.
                if not s.startswith("unix:") and rng.random() < 0.1:
                    host, _, port = s.rpartition(":")
                    s = "%s:0%s" % (host, port)
                w = 1 if wmode == "one" else rng.randrange(1, 5) if wmode == "small" \
                    else rng.randrange(1, 60)
                servers.append((token, s, w))
            cases.append(servers)
        tie_servers = [("tieA", backends[-2][1], 1), ("tieB", backends[-1][1], 1)]
        cases.append(tie_servers)
        cases.append(tie_servers[::-1])

        front = free_port()
        conf = ["worker_processes 1;\n", "daemon off;\n", "master_process off;\n",
                "pid %s/nginx.pid;\n" % tmp, "error_log %s/error.log warn;\n" % tmp,
                "events { worker_connections 256; }\n", "http {\n", "  access_log off;\n",
                "  keepalive_requests 1000000;\n",
                "  client_body_temp_path %s/body;\n" % tmp,
                "  proxy_temp_path %s/proxy;\n" % tmp,
                "  fastcgi_temp_path %s/fastcgi;\n" % tmp,
                "  uwsgi_temp_path %s/uwsgi;\n" % tmp,
                "  scgi_temp_path %s/scgi;\n" % tmp]
        for token, listen in backends:
            conf.append("  server { listen %s; return 200 \"%s\"; }\n" % (listen, token))
        for i, servers in enumerate(cases):
            conf.append("  upstream u%d {\n    hash $arg_k consistent;\n" % i)
            for _, s, w in servers:
                conf.append("    server %s weight=%d;\n" % (s, w))
            conf.append("  }\n")
        conf.append("  server {\n    listen 127.0.0.1:%d;\n" % front)
        for i in range(len(cases)):
            conf.append("    location = /c%d { proxy_pass http://u%d; "
                        "add_header X-Key $arg_k always; }\n" % (i, i))
        conf.append("  }\n}\n")
        conf_path = os.path.join(tmp, "nginx.conf")
        with open(conf_path, "w") as f:
            f.write("".join(conf))
        nginx = ch.start(["nginx", "-p", tmp, "-c", conf_path], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        wait_listening("127.0.0.1", front, nginx)
        version = subprocess.run(["nginx", "-v"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT).stdout.decode().strip()

        conn = Http(front)
        with open(args.out, "w") as out:
            out.write("# libchash compat vectors; format: tests/vectors/README.md\n")
            out.write("# generator: tools/compat/nginx_oracle.py --seed %d\n" % args.seed)
            out.write("# peer: %s, hash $arg_k consistent\n" % version)
            for i, servers in enumerate(cases):
                by_token = {t: s.encode() for t, s, _ in servers}
                is_tie = servers[0][0].startswith("tie")
                keys, seen = [], set()
                if is_tie:
                    # Keys landing on the tied point: CRC-32 in (previous point, tie].
                    points = sorted(set(chain(by_token["tieA"], 160) + chain(by_token["tieB"], 160)))
                    at = points.index(tie_value)
                    lo = points[at - 1]
                    # The arc may be a few values wide: forge keys onto it.
                    width = (tie_value - lo) & 0xFFFFFFFF
                    while len(keys) < 20:
                        k = key_with_crc(random_key(rng),
                                         (lo + 1 + rng.randrange(width)) & 0xFFFFFFFF)
                        if k is not None and k not in seen:
                            seen.add(k)
                            keys.append(k)
                while len(keys) < (20 if is_tie else args.keys):
                    k = random_key(rng)
                    if k not in seen:
                        seen.add(k)
                        keys.append(k)
                owners = []
                for k in keys:
                    status, headers, body = conn.get(b"/c%d?k=%s" % (i, k))
                    echoed = headers.get(b"x-key", b"")
                    if status != 200 or body.decode() not in by_token:
                        raise RuntimeError("case %d: status %d, body %r" % (i, status, body))
                    if echoed != k:
                        raise RuntimeError("nginx hashed %r, not %r" % (echoed, k))
                    owners.append((k, by_token[body.decode()]))
                comment = "case %d: %d servers%s" % (
                    i, len(servers), ", tied point 0x%08x" % tie_value if is_tie else "")
                write_case(out, "nginx", "ring", "default", None,
                           [(s.encode(), w) for _, s, w in servers], owners, comment)
                if args.chash:
                    cli_keys += check_cli(args.chash, tmp, i, servers, owners)
        conn.close()
    finally:
        ch.stop_all()
        if os.environ.get("KEEP"): print(tmp, file=sys.stderr)
        else: shutil.rmtree(tmp, ignore_errors=True)
    print("nginx oracle: seed %d, %d cases x %d keys in %.1f s%s"
          % (args.seed, len(cases), args.keys, time.monotonic() - started,
             ", chash lookup agrees on %d keys" % cli_keys if args.chash else ""))


def check_cli(chash, tmp, i, servers, owners):
    """`chash lookup --scheme nginx` on the case's own `server` lines."""
    path = os.path.join(tmp, "case_%d.conf" % i)
    with open(path, "w") as f:
        f.write("upstream u%d {\n    hash $arg_k consistent;\n" % i)
        for _, s, w in servers:
            f.write("    server %s weight=%d;\n" % (s, w))
        f.write("}\n")
    out = subprocess.run([chash, "lookup", "--scheme", "nginx", "--nodes-file", path],
                         input=b"".join(k + b"\n" for k, _ in owners),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if out.returncode != 0:
        raise RuntimeError("chash lookup failed on %s: %s" % (path, out.stderr.decode()))
    got = out.stdout.split(b"\n")[:-1]
    if len(got) != len(owners):
        raise RuntimeError("chash lookup printed %d lines for %d keys" % (len(got), len(owners)))
    for (k, o), line in zip(owners, got):
        key, _, node = line.rpartition(b"\t")
        if key != k or node != o:
            raise RuntimeError("case %d: key %r: chash lookup says %r, nginx %r" % (i, k, node, o))
    return len(owners)


if __name__ == "__main__":
    main()
