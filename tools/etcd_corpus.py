#!/usr/bin/env python3
"""etcd_corpus.py - records real etcd 3.4 gateway responses as the seed
corpus of tests/fuzz/fuzz_etcd.c.

Starts one etcd member (Debian's etcd-server) on free loopback ports in a
temporary directory (tests/proxy/etcdfleet.py), sends it the requests the
client sends (POST /v3/...), and writes each response body, byte for byte,
to OUT_DIR/NAME with one leading byte naming the parser fuzz_etcd.c feeds
it to: r range, h header, t txn, g lease grant, k keepalive, a auth,
s status, w watch stream, e error.

Usage: tools/etcd_corpus.py OUT_DIR    (tests/fuzz/corpus/etcd)
"""
import base64
import http.client
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "proxy"))
from harness import Env  # noqa: E402
from etcdfleet import EtcdFleet  # noqa: E402


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


class Member:
    def __init__(self, port):
        self.port = port
        self.token = None

    def post(self, path, body, stream_messages=0, has_leader=False):
        """The raw response body (for a stream: the first stream_messages
        messages as sent, newlines included). body: JSON, or bytes as is."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": "application/json"}
        if has_leader:
            headers["Grpc-Metadata-hasleader"] = "true"
        if not isinstance(body, bytes):
            body = json.dumps(body)
        if self.token:
            headers["Authorization"] = self.token
        c.request("POST", path, body, headers)
        r = c.getresponse()
        if not stream_messages:
            data = r.read()
            c.close()
            return data
        data = b""
        c.sock.settimeout(2)
        try:
            while data.count(b"\n") < stream_messages:
                chunk = r.read1(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        c.close()
        return data


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    env = Env()
    try:
        fleet = EtcdFleet(env, members=1)
        m = Member(fleet.client_ports[0])

        def save(name, kind, data):
            with open(os.path.join(out, name), "wb") as f:
                f.write(kind + data)

        every_byte = bytes(range(256))
        save("put", b"h", m.post("/v3/kv/put", {"key": b64("/c/a"), "value": b64("one")}))
        m.post("/v3/kv/put", {"key": b64(b"/c/" + every_byte), "value": b64(every_byte)})
        m.post("/v3/kv/put", {"key": b64("/c/empty"), "value": ""})
        save("range-one", b"r", m.post("/v3/kv/range", {"key": b64("/c/a")}))
        save("range-none", b"r", m.post("/v3/kv/range", {"key": b64("/nothing")}))
        save("range-prefix", b"r", m.post("/v3/kv/range", {"key": b64("/c/"),
                                                            "range_end": b64("/c0")}))
        save("range-limit", b"r", m.post("/v3/kv/range", {"key": b64("/c/"),
                                                           "range_end": b64("/c0"), "limit": 1}))
        save("error-future", b"e", m.post("/v3/kv/range", {"key": b64("/c/a"), "revision": 999}))
        save("error-badjson", b"e", m.post("/v3/kv/range", b"{bad"))
        lease = json.loads(m.post("/v3/lease/grant", {"TTL": 60}))["ID"]
        save("grant", b"g", m.post("/v3/lease/grant", {"TTL": 30}))
        m.post("/v3/kv/put", {"key": b64("/c/leased"), "value": b64("x"), "lease": lease})
        save("keepalive", b"k", m.post("/v3/lease/keepalive", {"ID": lease}))
        save("keepalive-gone", b"k", m.post("/v3/lease/keepalive", {"ID": "12345"}))
        save("revoke", b"h", m.post("/v3/lease/revoke", {"ID": lease}))
        save("error-lease", b"e", m.post("/v3/lease/revoke", {"ID": lease}))
        cas = {"compare": [{"key": b64("/c/a"), "target": "MOD", "result": "EQUAL",
                            "mod_revision": "0"}],
               "success": [{"request_put": {"key": b64("/c/a"), "value": b64("two")}}],
               "failure": [{"request_range": {"key": b64("/c/a")}}]}
        save("txn-failed", b"t", m.post("/v3/kv/txn", cas))
        cas["compare"][0]["key"] = cas["success"][0]["request_put"]["key"] = b64("/c/new")
        save("txn-swapped", b"t", m.post("/v3/kv/txn", cas))
        save("delete", b"h", m.post("/v3/kv/deleterange", {"key": b64("/c/new")}))
        save("status", b"s", m.post("/v3/maintenance/status", {}))
        save("watch-history", b"w", m.post("/v3/watch", {"create_request": {
            "key": b64("/c/"), "range_end": b64("/c0"), "start_revision": "1"}},
            stream_messages=3))
        m.post("/v3/kv/deleterange", {"key": b64("/c/"), "range_end": b64("/c0")})
        m.post("/v3/kv/compaction", {"revision": "4"})
        save("watch-compacted", b"w", m.post("/v3/watch", {"create_request": {
            "key": b64("/c/a"), "start_revision": "2"}}, stream_messages=2))
        save("watch-deletes", b"w", m.post("/v3/watch", {"create_request": {
            "key": b64("/c/"), "range_end": b64("/c0"), "start_revision": "5"}},
            stream_messages=3))
        fleet.enable_auth("pw")
        save("error-noauth", b"e", m.post("/v3/kv/range", {"key": b64("/c/a")}))
        save("error-wrongpw", b"e", m.post("/v3/auth/authenticate", {"name": "root",
                                                                     "password": "bad"}))
        body = m.post("/v3/auth/authenticate", {"name": "root", "password": "pw"})
        save("auth", b"a", body)
        m.token = "bogus"
        save("error-token", b"e", m.post("/v3/kv/range", {"key": b64("/c/a")}))
        save("watch-unauthenticated", b"w", m.post("/v3/watch", {"create_request": {
            "key": b64("/c/a")}}, stream_messages=1))
        m.token = json.loads(body)["token"]
        fleet.etcdctl("role", "add", "none")
        fleet.etcdctl("user", "add", "nobody:pw")
        fleet.etcdctl("user", "grant-role", "nobody", "none")
        m.token = json.loads(m.post("/v3/auth/authenticate", {"name": "nobody",
                                                              "password": "pw"}))["token"]
        save("watch-denied", b"w", m.post("/v3/watch", {"create_request": {
            "key": b64("/c/a")}}, stream_messages=1))
        fleet.kill(0)
        # A member whose two peers are dead, asked with require-leader.
        three = EtcdFleet(env)
        three.kill(0)
        three.kill(1)
        time.sleep(2)
        m = Member(three.client_ports[2])
        save("error-noleader", b"e", m.post("/v3/kv/put", {"key": b64("/c/a")}, has_leader=True))
        save("keepalive-noleader", b"k", m.post("/v3/lease/keepalive", {"ID": "1"},
                                                has_leader=True))
        save("watch-noleader", b"w", m.post("/v3/watch", {"create_request": {
            "key": b64("/c/a")}}, stream_messages=1, has_leader=True))
    finally:
        env.close()


if __name__ == "__main__":
    main()
