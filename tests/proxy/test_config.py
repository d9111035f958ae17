#!/usr/bin/env python3
"""test_config.py CHASH_PROXY - `chash-proxy -t -c FILE` on good and bad files.

A bad file (unknown key, bad value, bad server line, YAML syntax, missing
listen or servers...) must exit 2 with "FILE:LINE:" naming the line of the
problem - the line is found in the test's own text, by a marker, not taken
from the program. A good file (the sample config, a nutcracker config using
every key, unix sockets, our own keys) must exit 0; nutcracker must agree
about the good files and about the bad ones that use only its keys.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, check_eq, proxy_binary  # noqa: E402

BIN = proxy_binary()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAS_NUTCRACKER = shutil.which("nutcracker") is not None

GOOD_POOL = """\
alpha:
  listen: 127.0.0.1:22121
  redis: true
  hash: fnv1a_64
  hash_tag: "{}"
  distribution: ketama
  timeout: 400
  servers:
   - 127.0.0.1:6379:1
   - 127.0.0.1:6380:1
"""


def pool(*lines, name="alpha", servers=("127.0.0.1:6379:1", "127.0.0.1:6380:1")):
    text = "%s:\n  listen: 127.0.0.1:22121\n" % name
    text += "".join("  %s\n" % ln for ln in lines)
    if servers is not None:
        text += "  servers:\n" + "".join("   - %s\n" % s for s in servers)
    return text


# (what, text, marker): the error must name the first line containing marker;
# nutcracker_too: nutcracker rejects it as well (only its own keys involved).
BAD = [
    ("unknown key", pool("redis: true", "hsah: md5"), "hsah", True),
    ("unknown key, second pool", GOOD_POOL + pool("distributon: ketama", name="beta"),
     "distributon", True),
    ("unknown key at the end", pool("redis: true") + "  colour: blue\n", "colour", True),
    ("bad hash", pool("hash: md6"), "md6", True),
    ("bad distribution", pool("distribution: circle"), "circle", True),
    ("timeout not a number", pool("timeout: soon"), "soon", True),
    ("timeout with a unit", pool("timeout: 400ms"), "400ms", True),
    ("backlog not an integer", pool("backlog: 1.5"), "1.5", True),
    ("bad boolean", pool("preconnect: maybe"), "maybe", True),
    ("bad boolean (redis)", pool("redis: 1"), "redis: 1", True),
    ("hash_tag of one char", pool('hash_tag: "{"'), "hash_tag", True),
    ("hash_tag of three chars", pool('hash_tag: "{}}"'), "hash_tag", True),
    ("redis_db negative", pool("redis: true", "redis_db: -1"), "redis_db", False),
    ("server_connections zero", pool("server_connections: 0"), "server_connections", False),
    ("server_failure_limit words", pool("server_failure_limit: two"), "two", True),
    ("server_retry_timeout negative", pool("server_retry_timeout: -30"), "-30", False),
    ("client_connections words", pool("client_connections: many"), "many", True),
    ("weight zero", pool(servers=("127.0.0.1:6379:1", "127.0.0.1:6380:0")), ":6380:0", False),
    ("weight not a number", pool(servers=("127.0.0.1:6379:x",)), ":6379:x", True),
    ("no weight", pool(servers=("127.0.0.1:6379:1", "127.0.0.1:6380")), "6380", True),
    ("port too big", pool(servers=("127.0.0.1:99999:1",)), "99999", True),
    ("port not a number", pool(servers=("127.0.0.1:http:1",)), "http", True),
    ("a name with spaces", pool(servers=("127.0.0.1:6379:1 two words",)), "two words", True),
    ("duplicate server name", pool(servers=("127.0.0.1:6379:1 same", "127.0.0.1:6380:1 same")),
     "6380:1 same", True),
    ("servers not a list", pool("servers: 127.0.0.1:6379:1", servers=None), "servers", True),
    ("servers empty", pool("servers: []", servers=None), "servers", False),
    ("duplicate key", pool("hash: md5", "timeout: 10", "hash: crc32a"), "crc32a", False),
    ("listen without a port", pool("redis: true").replace("127.0.0.1:22121", "localhost"),
     "listen", True),
    ("listen port zero", pool().replace(":22121", ":0"), "listen", False),
    ("no listen", "alpha:\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n", "alpha", True),
    ("no servers", "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n", "alpha", True),
    ("redis_auth without redis", pool("redis_auth: secret"), "alpha", False),
    ("redis_auth too long", pool("redis: true", "redis_auth: " + "x" * 300), "redis_auth",
     False),
    ("pool body not a map", GOOD_POOL + "beta: 3\n", "beta", True),
    ("tab indentation", pool("redis: true", "\thash: md5"), "\thash", True),
    ("a key without a value", pool("redis: true", "hash:"), "hash:", True),
    ("not a map of pools", "- alpha\n- beta\n", "- alpha", True),
    ("same listen twice", GOOD_POOL + pool(name="beta"), "beta:", False),
    ("our key, bad value", pool("max_pipeline: lots"), "lots", False),
    ("our key, zero", pool("max_bulk_length: 0"), "max_bulk_length", False),
    ("warmup on memcached", pool("warmup: 1000"), "alpha", False),
    ("warmup with random", pool("redis: true", "distribution: random", "warmup: 1000"), "alpha",
     False),
    ("warmup negative", pool("redis: true", "warmup: -5"), "-5", False),
    ("TLS 1.1", pool("tls_cert_file: /c.pem", "tls_protocols: TLSv1.2 TLSv1.1"), "TLSv1.1",
     False),
    ("TLS protocol unknown", pool("tls_protocols: SSLv3"), "SSLv3", False),
    ("tls_auth_clients unknown", pool("tls_auth_clients: maybe"), "maybe", False),
    ("TLS key without a certificate", pool("tls_key_file: /k.pem"), "alpha", False),
    ("TLS certificate missing", pool("tls_cert_file: /nonexistent/c.pem"), "alpha", False),
    ("TLS certificate not a file", pool("tls_cert_file: /dev/zero"), "alpha", False),
    ("client certificates without a CA", pool("tls_cert_file: /dev/null",
                                              "tls_auth_clients: yes"), "alpha", False),
    ("server_tls_name without server_tls", pool("server_tls_name: db.example"), "alpha", False),
    ("server_tls_key_file alone", pool("server_tls: true", "server_tls_key_file: /k.pem"),
     "alpha", False),
]

GOOD = [
    ("one pool", GOOD_POOL, True),
    ("every nutcracker key", """\
# comments are fine
web:
  listen: 127.0.0.1:22121
  hash: md5
  hash_tag: "{}"
  distribution: ketama
  timeout: 400
  backlog: 1024
  preconnect: true
  redis: true
  redis_auth: hunter2
  redis_db: 3
  server_connections: 2
  client_connections: 1000
  auto_eject_hosts: true
  server_retry_timeout: 2000
  server_failure_limit: 3
  servers:
   - 127.0.0.1:6379:1 server1
   - 127.0.0.1:6380:2 server2
   - /tmp/redis.sock:1 local

sessions:
  listen: /tmp/chash-test-sessions.sock 0666
  hash: murmur
  distribution: modula
  servers:
   - 127.0.0.1:11211:1
   - 127.0.0.1:11212:1

plain:
  listen: 127.0.0.1:22123
  distribution: random
  servers:
   - localhost:11211:1
""", True),
    ("every hash", "".join(
        "p%d:\n  listen: 127.0.0.1:%d\n  hash: %s\n  servers:\n   - 127.0.0.1:6379:1\n"
        % (i, 23000 + i, h) for i, h in enumerate(
            ["one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64",
             "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"])), True),
    ("our distributions and limits", """\
ours:
  listen: 127.0.0.1:22124
  distribution: jump
  max_bulk_length: 1048576
  max_arguments: 1000
  max_key_length: 250
  max_pipeline: 100
  max_client_buffer: 65536
  redis: true
  warmup: 30000
  servers:
   - 127.0.0.1:6379:1
   - 127.0.0.1:6380:1
maglev:
  listen: 127.0.0.1:22125
  distribution: maglev
  servers:
   - 127.0.0.1:6379:1
""", False),
    ("CRLF line ends", GOOD_POOL.replace("\n", "\r\n"), True),
]


def run_t(path, binary):
    p = subprocess.run([binary, "-t", "-c", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def main():
    tmp = tempfile.mkdtemp(prefix="chash-proxy-conf-")
    checked_nc = 0
    try:
        for what, text, marker, nutcracker_too in BAD:
            path = os.path.join(tmp, "bad.yml")
            with open(path, "w") as f:
                f.write(text)
            lines = text.split("\n")
            want_line = next(i + 1 for i, ln in enumerate(lines) if marker in ln)
            rc, out = run_t(path, BIN)
            check_eq(rc, 2, "%s: exit status (output %r)" % (what, out))
            check("%s:%d:" % (path, want_line) in out,
                  "%s: the message names line %d: %r" % (what, want_line, out))
            check("syntax is ok" not in out, "%s: not called good" % what)
            if nutcracker_too and HAS_NUTCRACKER:
                nrc, nout = run_t(path, "nutcracker")
                check(nrc != 0, "%s: nutcracker rejects it too (%r)" % (what, nout))
                checked_nc += 1
        print("ok %d bad configurations: exit 2 with their line" % len(BAD))
        # libyaml sees an unclosed quote or bracket only at the end of the
        # file: the message also says where it began.
        for what, text, begins in [
                ("unclosed quote", pool('hash_tag: "{}', "redis: true"), 3),
                ("unclosed bracket", pool("servers: [127.0.0.1:6379:1", "redis: true",
                                          servers=None), 3)]:
            path = os.path.join(tmp, "bad.yml")
            with open(path, "w") as f:
                f.write(text)
            rc, out = run_t(path, BIN)
            check_eq(rc, 2, "%s: exit status" % what)
            check("begins on line %d" % begins in out, "%s: where it began: %r" % (what, out))
        samples = [("conf/chash-proxy.yml", open(os.path.join(ROOT, "conf",
                                                               "chash-proxy.yml")).read(), False)]
        for what, text, nutcracker_too in GOOD + samples:
            path = os.path.join(tmp, "good.yml")
            with open(path, "w") as f:
                f.write(text)
            rc, out = run_t(path, BIN)
            check_eq(rc, 0, "%s: exit status (output %r)" % (what, out))
            check("syntax is ok" in out, "%s: says so: %r" % (what, out))
            if nutcracker_too and HAS_NUTCRACKER:
                nrc, nout = run_t(path, "nutcracker")
                check_eq(nrc, 0, "%s: nutcracker accepts it (%r)" % (what, nout))
                checked_nc += 1
        print("ok %d good configurations: exit 0" % (len(GOOD) + len(samples)))
        # A missing file: exit 2, and the message names it.
        rc, out = run_t(os.path.join(tmp, "nope.yml"), BIN)
        check_eq(rc, 2, "missing file: exit status")
        check("nope.yml" in out, "missing file named: %r" % out)
        print("ok nutcracker agreed on %d of them" % checked_nc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
