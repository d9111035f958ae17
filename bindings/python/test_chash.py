#!/usr/bin/env python3
"""Tests of the chash Python bindings (stdlib unittest only).

    CHASH_LIBRARY=build/libchash.so python3 bindings/python/test_chash.py \
        --cli build/chash [-v]

The library comes from CHASH_LIBRARY (ctest sets it to the freshly built
libchash.so). With --cli (or CHASH_CLI) the placements are checked against
the `chash` CLI, a C program on the same library, on thousands of random
keys; without it those tests are skipped. CHASH_TEST_SEED fixes the random
keys (every failure message names the seed it ran with).
"""

from __future__ import annotations

import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import unittest
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chash  # noqa: E402

CLI: Optional[str] = os.environ.get("CHASH_CLI") or None
if "--cli" in sys.argv:  # before the classes: skipUnless reads CLI at definition
    _i = sys.argv.index("--cli")
    CLI = sys.argv[_i + 1]
    del sys.argv[_i:_i + 2]
SEED = int(os.environ.get("CHASH_TEST_SEED") or random.SystemRandom().randrange(1 << 32))


def random_keys(rng: random.Random, count: int) -> List[bytes]:
    """Keys of 0..40 bytes: text, hash tags, and bytes >= 0x80 (the peers'
    signed-char quirks); never a newline (the CLI reads one key a line)."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789:_-{}./ \t"
    keys = [b"", b"{}", b"{a}", b"user:42", "ключ".encode()]
    while len(keys) < count:
        n = rng.randrange(0, 41)
        if rng.random() < 0.2:
            keys.append(bytes(rng.choice([b for b in range(256) if b != 10])
                              for _ in range(n)))
        else:
            keys.append(bytes(rng.choice(alphabet) for _ in range(n)))
    return keys


def run_cli(args: Sequence[str], stdin: bytes = b"") -> bytes:
    assert CLI
    proc = subprocess.run([CLI, *args], input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise AssertionError("chash %s: exit %d: %s"
                             % (" ".join(args), proc.returncode, proc.stderr.decode()))
    return proc.stdout


class Counting:
    """Stands in for chash._lib and counts the C objects made and freed."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.live: Dict[str, int] = {"chash": 0, "loads": 0}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def _made(self, kind: str, fn: Any, *args: Any) -> int:
        rc = int(fn(*args))
        if rc == 0:
            self.live[kind] += 1
        return rc

    def _freed(self, kind: str, fn: Any, obj: Any) -> None:
        if obj:
            self.live[kind] -= 1
        fn(obj)

    def chash_create(self, *a: Any) -> int:
        return self._made("chash", self.real.chash_create, *a)

    def chash_clone(self, *a: Any) -> int:
        return self._made("chash", self.real.chash_clone, *a)

    def chash_free(self, c: Any) -> None:
        self._freed("chash", self.real.chash_free, c)

    def chash_loads_create(self, *a: Any) -> int:
        return self._made("loads", self.real.chash_loads_create, *a)

    def chash_loads_free(self, p: Any) -> None:
        self._freed("loads", self.real.chash_loads_free, p)


class TestRing(unittest.TestCase):
    def test_add_lookup_len_nodes(self) -> None:
        with chash.Ring() as ring:
            self.assertEqual(len(ring), 0)
            ring.add("cache-a")
            ring.add(b"cache-b", weight=2)
            ring.add("cache-c", 3)
            self.assertEqual(len(ring), 3)
            self.assertEqual(ring.nodes(), ["cache-a", "cache-b", "cache-c"])
            self.assertEqual(ring.weights(), {"cache-a": 1, "cache-b": 2, "cache-c": 3})
            self.assertIn("cache-b", ring)
            self.assertIn(b"cache-b", ring)
            self.assertNotIn("cache-z", ring)
            self.assertEqual(ring.point_count(), 6 * 160)
            owners = set()
            for i in range(2000):
                k = "user:%d" % i
                owner = ring.lookup(k)
                owners.add(owner)
                self.assertEqual(owner, ring.lookup(k.encode()))
                self.assertEqual(owner, ring.lookup(bytearray(k.encode())))
                self.assertEqual(owner, ring.lookup(memoryview(k.encode())))
                self.assertEqual(owner, ring.nodes()[ring.lookup_index(k)])
                self.assertEqual(owner, ring.lookup_hash(ring.key_hash(k)))
            self.assertEqual(owners, {"cache-a", "cache-b", "cache-c"})
            # Keys are UTF-8.
            self.assertEqual(ring.lookup("ключ"), ring.lookup("ключ".encode()))
            # native keys land at CRC-32 (zlib's value, which Python's binascii has).
            import binascii
            self.assertEqual(ring.key_hash(b"abc"), binascii.crc32(b"abc"))

    def test_remove_moves_only_its_keys(self) -> None:
        with chash.Ring() as ring:
            ring.add_many(["n%d" % i for i in range(10)])
            keys = ["k%d" % i for i in range(5000)]
            before = [ring.lookup(k) for k in keys]
            ring.remove("n3")
            self.assertEqual(len(ring), 9)
            self.assertNotIn("n3", ring.nodes())
            for k, b in zip(keys, before):
                a = ring.lookup(k)
                self.assertNotEqual(a, "n3")
                if b != "n3":
                    self.assertEqual(a, b, k)
            ring.add("n3")  # back: the same placement (native depends only on membership)
            self.assertEqual([ring.lookup(k) for k in keys], before)
            ring.set_weight("n0", 5)
            self.assertEqual(ring.weights()["n0"], 5)

    def test_lookup_n(self) -> None:
        for algo in ("ring", "rendezvous", "multiprobe", "bounded", "buckets"):
            with self.subTest(algo=algo), chash.Ring(algo) as ring:
                ring.add_many([("s%d" % i, 1 + i % 3) for i in range(6)])
                for i in range(300):
                    k = "key-%d" % i
                    got = ring.lookup_n(k, 3)
                    self.assertEqual(len(got), 3)
                    self.assertEqual(len(set(got)), 3)
                    self.assertEqual(got[0], ring.lookup(k))
                    self.assertEqual(ring.lookup_n(k, 100), ring.lookup_n(k, 6))
                    self.assertEqual(ring.lookup_n(k, 1), [got[0]])
                    self.assertEqual(ring.lookup_n(k, 0), [])
                    self.assertEqual(ring.lookup_n(k, 6)[:3], got)

    def test_lookup_n_without_ring_order(self) -> None:
        for algo in ("modulo", "jump", "maglev", "memento"):
            with self.subTest(algo=algo), chash.Ring(algo) as ring:
                ring.add_many(["a", "b", "c"])
                self.assertIn(ring.lookup("k"), ("a", "b", "c"))
                with self.assertRaises(chash.ChashError) as cm:
                    ring.lookup_n("k", 2)
                self.assertEqual(cm.exception.code, chash.CHASH_ENOTSUP)
                self.assertEqual(cm.exception.name, "CHASH_ENOTSUP")
                self.assertIn("no ring order", str(cm.exception))
                self.assertIn(algo, str(cm.exception))

    def assertChashError(self, code: int, fn: Any, *args: Any, **kw: Any) -> chash.ChashError:
        with self.assertRaises(chash.ChashError) as cm:
            fn(*args, **kw)
        e = cm.exception
        self.assertEqual(e.code, code, str(e))
        self.assertEqual(e.name, chash.ERROR_NAMES[code])
        self.assertEqual(e.strerror, chash._lib.chash_strerror(code).decode())
        self.assertIn(e.strerror, str(e))
        self.assertIn(e.name, str(e))
        return e

    def test_errors(self) -> None:
        E = chash
        with chash.Ring() as ring:
            self.assertChashError(E.CHASH_EEMPTY, ring.lookup, "k")
            self.assertChashError(E.CHASH_EEMPTY, ring.lookup_n, "k", 2)
            self.assertChashError(E.CHASH_EEMPTY, ring.ownership)
            ring.add("a")
            e = self.assertChashError(E.CHASH_EEXIST, ring.add, "a")
            self.assertIn("'a'", str(e))
            self.assertChashError(E.CHASH_ENOENT, ring.remove, "zz")
            self.assertChashError(E.CHASH_ENOENT, ring.set_weight, "zz", 2)
            self.assertChashError(E.CHASH_EWEIGHT, ring.add, "b", 0)
            self.assertChashError(E.CHASH_EWEIGHT, ring.add, "b", 65536)
            self.assertChashError(E.CHASH_EWEIGHT, ring.add, "b", 1 << 40)
            self.assertChashError(E.CHASH_EWEIGHT, ring.add, "b", -1)
            self.assertChashError(E.CHASH_ENAME, ring.add, "")
            self.assertChashError(E.CHASH_ENAME, ring.add, "x" * 4097)
            # All or nothing: the duplicate inside the list adds none.
            self.assertChashError(E.CHASH_EEXIST, ring.add_many, ["c", "d", "c"])
            self.assertEqual(ring.nodes(), ["a"])  # failed calls changed nothing
            self.assertRaises(TypeError, ring.lookup, 42)
            self.assertRaises(TypeError, ring.add, 42)
            self.assertRaises(TypeError, ring.add, "b", 1.5)
            self.assertRaises(ValueError, ring.lookup_n, "k", -1)
        self.assertChashError(E.CHASH_EUNKNOWN, chash.Ring, "nosuch")
        self.assertChashError(E.CHASH_EUNKNOWN, chash.Ring, scheme="nosuch")
        self.assertChashError(E.CHASH_EUNKNOWN, chash.Ring, key_hash="sha1")
        self.assertChashError(E.CHASH_EINVAL, chash.Ring, "jump", "redis-cluster")
        self.assertChashError(E.CHASH_EINVAL, chash.Ring, vnodes=65537)
        self.assertChashError(E.CHASH_EINVAL, chash.Ring, "maglev", maglev_table_size=100)
        self.assertChashError(E.CHASH_EINVAL, chash.Ring, hash_tag="{")
        with chash.Ring("jump") as jump:
            jump.add_many(["a", "b", "c"])
            self.assertChashError(E.CHASH_ENOTSUP, jump.remove, "a")
            jump.remove("c")
            self.assertEqual(jump.nodes(), ["a", "b"])
        with chash.Ring() as r1, chash.Ring("ring", "groupcache") as r2:
            r1.add("a")
            r2.add("a")
            self.assertChashError(E.CHASH_ENOTSUP, chash.plan, r1, r2)

    def test_closed(self) -> None:
        ring = chash.Ring()
        ring.add("a")
        with ring as same:
            self.assertIs(same, ring)
        self.assertTrue(ring.closed)
        ring.close()  # idempotent
        for call in (lambda: ring.lookup("k"), lambda: ring.add("b"), lambda: len(ring),
                     lambda: ring.lookup_n("k", 1), lambda: ring.nodes(), ring.clone):
            self.assertRaises(ValueError, call)
        self.assertEqual(repr(ring), "<chash.Ring closed>")
        with self.assertRaises(ValueError):
            with ring:
                pass

    def test_names_are_bytes(self) -> None:
        with chash.Ring() as ring:
            ring.add(b"\xff\xfe-raw")
            ring.add("naïve")
            names = ring.nodes()
            self.assertEqual(names[1], "naïve")
            self.assertEqual(names[0].encode("utf-8", "surrogateescape"), b"\xff\xfe-raw")
            self.assertIn(names[0], ring)
            ring.remove(names[0])
            self.assertEqual(ring.nodes(), ["naïve"])
            self.assertEqual(ring.lookup("anything"), "naïve")

    def test_config_and_clone(self) -> None:
        with chash.Ring("maglev", maglev_table_size=251) as ring:
            cfg = ring.config
            self.assertEqual((cfg["algo"], cfg["scheme"], cfg["maglev_table_size"]),
                             ("maglev", "native", 251))
            ring.add_many(["a", "b"])
            with ring.clone() as copy:
                copy.add("c")
                self.assertEqual(len(ring), 2)
                self.assertEqual(len(copy), 3)
                self.assertEqual(copy.algo, "maglev")
            self.assertGreater(ring.memory(), 0)
        with chash.Ring("ring", "twemproxy", key_hash="murmur", hash_tag="{}") as t:
            self.assertEqual((t.config["key_hash"], t.config["hash_tag"]), ("murmur", "{}"))
            t.add_many(["a:1", "b:1"])
            self.assertEqual(t.lookup("{user1}:x"), t.lookup("{user1}:y"))

    def test_no_leaks(self) -> None:
        """Every C object the bindings make is freed: closed, left by
        `with`, dropped, failed half-way, and inside the helpers."""
        gc.collect()  # nothing of earlier tests freed under the counter
        counting = Counting(chash._lib)
        chash._lib = counting
        try:
            for _ in range(3):
                r = chash.Ring()
                r.add_many(["a", "b", "c"])
                c = r.clone()
                c.remove("a")
                chash.plan(r, c)
                r.close()
                del c  # garbage: __del__ frees
                with chash.Ring("jump") as j:
                    j.add("x")
                    j.clone()  # dropped at once
                self.assertRaises(chash.ChashError, chash.Ring, "nosuch")
                self.assertRaises(chash.ChashError, chash.Ring, vnodes=1 << 20)
                self.assertRaises(chash.ChashError, chash.ownership, ["a", "a"])
                self.assertRaises(chash.ChashError, chash.plan, ["a"], ["b", "b"])
                chash.ownership(5, algo="rendezvous", samples=1000)
                chash.plan(4, 5, algo="jump", samples=1000)
                chash.plan(4, 5, algo="buckets")
                chash.simulate(4, keys=500, algos="all")
                self.assertRaises(chash.ChashError, chash.simulate, 4, keys=10,
                                  algos=["ring", "nosuch"])
            gc.collect()
            self.assertEqual(counting.live, {"chash": 0, "loads": 0})
        finally:
            chash._lib = counting.real

    def test_threads(self) -> None:
        """Lookups in several threads while another changes the same Ring:
        every answer is a member at some time; nothing crashes."""
        ring = chash.Ring()
        ring.add_many(["base-%d" % i for i in range(8)])
        errors: List[BaseException] = []
        stop = threading.Event()
        possible = set(ring.nodes()) | {"extra-%d" % i for i in range(20)}

        def reader() -> None:
            try:
                i = 0
                while not stop.is_set():
                    self.assertIn(ring.lookup("k%d" % i), possible)
                    self.assertTrue(set(ring.lookup_n("k%d" % i, 3)) <= possible)
                    i += 1
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for rnd in range(5):
            for i in range(20):
                ring.add("extra-%d" % i)
            for i in range(20):
                ring.remove("extra-%d" % i)
        stop.set()
        for t in threads:
            t.join()
        ring.close()
        self.assertEqual(errors, [])


class TestHelpers(unittest.TestCase):
    def test_ownership(self) -> None:
        o = chash.ownership([("a", 1), ("b", 3)])
        self.assertTrue(o["exact"])
        self.assertEqual(o["space"], 1 << 32)
        self.assertEqual(sum(n["hashes"] for n in o["nodes"]), 1 << 32)
        self.assertAlmostEqual(o["nodes"][1]["ideal"], 0.75)
        self.assertAlmostEqual(o["nodes"][1]["share"], 0.75, delta=0.05)
        s = chash.ownership(4, algo="jump", samples=20000)
        self.assertFalse(s["exact"])
        self.assertEqual(s["space"], 20000)
        self.assertEqual(sum(n["hashes"] for n in s["nodes"]), 20000)

    def test_plan_ring_sums(self) -> None:
        with chash.Ring() as a:
            a.add_many(["n%d" % i for i in range(10)])
            with a.clone() as b:
                b.add("n10")
                p = chash.plan(a, b, keys=["k%d" % i for i in range(3000)])
                self.assertTrue(p["exact"])
                self.assertEqual(p["kind"], "hash")
                size = sum(r["last"] - r["first"] + 1 for r in p["ranges"])
                self.assertAlmostEqual(p["moved_fraction"], size / 2 ** 32)
                self.assertTrue(all(r["to"] == "n10" for r in p["ranges"]))
                self.assertAlmostEqual(sum(x["fraction"] for x in p["pairs"]),
                                       p["moved_fraction"])
                for m in p["keys"]:
                    self.assertEqual(m["to"], "n10")
                    h = a.key_hash(m["key"])
                    self.assertTrue(any(r["first"] <= h <= r["last"] for r in p["ranges"]))
                self.assertEqual(p["keys_total"], 3000)

    def test_plan_buckets(self) -> None:
        with chash.Ring("buckets", bucket_count=97) as a:
            a.add_many(["u%d" % i for i in range(5)])
            with a.clone() as b:
                b.remove("u2")
                p = chash.plan(a, b)
                self.assertEqual(p["kind"], "bucket")
                moved_buckets = {x for r in p["ranges"] for x in range(r["first"], r["last"] + 1)}
                for bucket in range(97):
                    self.assertEqual(bucket in moved_buckets,
                                     a.lookup_hash(bucket) != b.lookup_hash(bucket))
                own = a.ownership()
                self.assertAlmostEqual(p["moved_fraction"], own["nodes"][2]["share"])

    def test_plan_sampled(self) -> None:
        p = chash.plan(["a", "b", "c"], ["a", "b", "c", "d"], algo="jump", samples=30000)
        self.assertFalse(p["exact"])
        self.assertEqual(p["ranges"], [])
        self.assertAlmostEqual(p["moved_fraction"], 0.25, delta=0.02)

    def test_simulate(self) -> None:
        s = chash.simulate(10, keys=20000, algos="ring,modulo")
        ring, modulo = s["results"]
        self.assertAlmostEqual(s["ideal_moved_fraction"], 1 / 11)
        self.assertLess(ring["moved_fraction"], 0.15)
        self.assertGreater(modulo["moved_fraction"], 0.8)
        self.assertEqual(s["added"], ["node-10"])
        self.assertRaises(ValueError, chash.simulate, 3, remove=3)
        self.assertRaises(ValueError, chash.simulate, 3, algos=["ring", "ring"])


@unittest.skipUnless(CLI, "no --cli: placements not compared with the chash CLI")
class TestAgainstCLI(unittest.TestCase):
    """The same placements through the bindings and through the CLI."""

    tmp: tempfile.TemporaryDirectory  # type: ignore[type-arg]

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory(prefix="chash-py-")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    def nodes_file(self, name: str, nodes: Sequence[Tuple[str, int]]) -> str:
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            for n, w in nodes:
                f.write("%s %d\n" % (n, w))
        return path

    @staticmethod
    def members(scheme: str, rng: random.Random, count: int = 12) -> List[Tuple[str, int]]:
        if scheme in ("ketama", "twemproxy"):
            names = ["10.0.%d.%d:%s" % (i // 7, i, rng.choice(["11211", "6379", "11212"]))
                     for i in range(count)]
        elif scheme == "nginx":
            names = ["192.168.1.%d:%d" % (i, 8080 + i % 2) for i in range(count)]
        else:
            names = ["cache-%d" % i for i in range(count)]
        return [(n, rng.randrange(1, 6)) for n in names]

    CASES: List[Tuple[str, str, Dict[str, Any]]] = [
        ("ring", "native", {}),
        ("ring", "native", {"vnodes": 40}),
        ("ring", "groupcache", {}),
        ("ring", "groupcache", {"vnodes": 50}),
        ("ring", "ketama", {}),
        ("ring", "twemproxy", {}),
        ("ring", "twemproxy", {"key_hash": "murmur", "hash_tag": "{}"}),
        ("ring", "twemproxy", {"key_hash": "crc32"}),
        ("ring", "nginx", {}),
        ("modulo", "native", {}),
        ("jump", "native", {}),
        ("jump", "groupcache", {}),
        ("rendezvous", "native", {}),
        ("maglev", "native", {}),
        ("multiprobe", "native", {}),
        ("multiprobe", "groupcache", {}),
        ("bounded", "native", {}),
        ("memento", "native", {}),
        ("buckets", "native", {}),
        ("buckets", "native", {"bucket_count": 1000, "bucket_by": "digits"}),
        ("buckets", "redis-cluster", {}),
    ]

    @staticmethod
    def cli_flags(algo: str, scheme: str, opts: Dict[str, Any]) -> List[str]:
        flags = ["--algo", algo, "--scheme", scheme]
        names = {"vnodes": "--vnodes", "key_hash": "--hash", "hash_tag": "--hash-tag",
                 "bucket_count": "--buckets", "bucket_by": "--bucket-by"}
        for k, v in opts.items():
            flags += [names[k], str(v)]
        return flags

    def cli_lookup(self, flags: List[str], path: str, keys: List[bytes],
                   replicas: int = 0) -> List[List[bytes]]:
        extra = ["--replicas", str(replicas)] if replicas else []
        if "redis-cluster" in flags:  # its nodes files are CLUSTER NODES: names instead
            with open(path) as f:
                extra += ["--names", ",".join(line.split()[0] for line in f)]
        else:
            extra += ["--nodes-file", path]
        out = run_cli(["lookup", *flags, *extra],
                      b"".join(k + b"\n" for k in keys))
        lines = out.split(b"\n")
        self.assertEqual(lines[-1], b"")
        self.assertEqual(len(lines) - 1, len(keys))
        owners = []
        for key, line in zip(keys, lines):
            self.assertTrue(line.startswith(key + b"\t"), line)
            owners.append(line[len(key) + 1:].split(b"\t")[0].split(b","))
        return owners

    def test_lookup_matches_cli(self) -> None:
        rng = random.Random(SEED)
        total = 0
        for algo, scheme, opts in self.CASES:
            with self.subTest(algo=algo, scheme=scheme, opts=opts, seed=SEED):
                members = self.members(scheme, rng)
                if scheme == "redis-cluster":  # --names: weight 1
                    members = [(n, 1) for n, _ in members]
                path = self.nodes_file("lookup.nodes", members)
                keys = random_keys(rng, 3000)
                if opts.get("bucket_by") == "digits":
                    keys += [b"user%d" % rng.randrange(10 ** 6) for _ in range(500)]
                cli = self.cli_lookup(self.cli_flags(algo, scheme, opts), path, keys)
                with chash.Ring(algo, scheme, **opts) as ring:
                    for n, w in members:
                        ring.add(n, w)
                    for key, owner in zip(keys, cli):
                        self.assertEqual(ring.lookup(key).encode(), owner[0],
                                         "key %r, seed %d" % (key, SEED))
                        total += 1
        self.assertGreater(total, 50000)

    def test_lookup_n_matches_cli(self) -> None:
        rng = random.Random(SEED + 1)
        for algo, scheme in (("ring", "native"), ("ring", "groupcache"), ("ring", "ketama"),
                             ("rendezvous", "native"), ("multiprobe", "native"),
                             ("bounded", "native"), ("buckets", "native")):
            with self.subTest(algo=algo, scheme=scheme, seed=SEED):
                members = self.members(scheme, rng, 7)
                path = self.nodes_file("replicas.nodes", members)
                keys = random_keys(rng, 2000)
                cli = self.cli_lookup(["--algo", algo, "--scheme", scheme], path, keys, 3)
                with chash.Ring(algo, scheme) as ring:
                    ring.add_many(members)
                    for key, owners in zip(keys, cli):
                        got = [n.encode() for n in ring.lookup_n(key, 3)]
                        self.assertEqual(got, owners, "key %r, seed %d" % (key, SEED))

    def test_simulate_matches_cli(self) -> None:
        for nodes, add, remove, scheme in ((8, 1, 0, "native"), (9, 2, 1, "groupcache")):
            with self.subTest(nodes=nodes, add=add, remove=remove, scheme=scheme):
                cli = json.loads(run_cli([
                    "simulate", "--nodes", str(nodes), "--add", str(add), "--remove",
                    str(remove), "--keys", "5000", "--algo", "all", "--scheme", scheme,
                    "--seed", "7", "--json"]))
                py = chash.simulate(nodes, add=add, remove=remove, keys=5000, algos="all",
                                    scheme=scheme, seed=7)
                self.assertEqual(py["added"], cli["added"])
                self.assertEqual(py["removed"], cli["removed"])
                self.assertAlmostEqual(py["ideal_moved_fraction"], cli["ideal_moved_fraction"],
                                       places=6)
                self.assertEqual([r["algo"] for r in py["results"]],
                                 [r["algo"] for r in cli["results"]])
                for p, c in zip(py["results"], cli["results"]):
                    self.assertEqual(p["nodes"], c["nodes"], p["algo"])
                    for k in ("moved_fraction", "max_over_mean", "min_over_mean",
                              "stddev_over_mean"):
                        self.assertAlmostEqual(p[k], c[k], places=6, msg=(p["algo"], k))

    def test_plan_matches_cli(self) -> None:
        rng = random.Random(SEED + 2)
        for scheme in ("native", "groupcache", "ketama"):
            with self.subTest(scheme=scheme, seed=SEED):
                old = self.members(scheme, rng, 10)
                new = [m for m in old if rng.random() > 0.2] + self.members(scheme, rng, 13)[10:]
                fa, fb = self.nodes_file("from.nodes", old), self.nodes_file("to.nodes", new)
                cli = json.loads(run_cli(["plan", "--scheme", scheme, "--from", fa, "--to", fb,
                                          "--json"]))
                py = chash.plan(old, new, scheme=scheme)
                self.assertTrue(py["exact"] and cli["exact"])
                self.assertEqual(py["ranges"], cli["ranges"])
                self.assertAlmostEqual(py["moved_fraction"], cli["moved_fraction"], places=9)
                self.assertEqual({(p["from"], p["to"]): round(p["fraction"], 9)
                                  for p in py["pairs"]},
                                 {(p["from"], p["to"]): p["fraction"] for p in cli["pairs"]})

    def test_ownership_matches_cli(self) -> None:
        rng = random.Random(SEED + 3)
        for algo, scheme in (("ring", "native"), ("ring", "nginx"), ("maglev", "native"),
                             ("buckets", "native")):
            with self.subTest(algo=algo, scheme=scheme, seed=SEED):
                members = self.members(scheme, rng, 9)
                path = self.nodes_file("own.nodes", members)
                cli = json.loads(run_cli(["ownership", "--algo", algo, "--scheme", scheme,
                                          "--nodes-file", path, "--json"]))
                py = chash.ownership(members, algo=algo, scheme=scheme)
                self.assertEqual(py["space"], cli["space"])
                self.assertEqual([(n["name"], n["weight"], n["hashes"]) for n in py["nodes"]],
                                 [(n["name"], n["weight"], n["hashes"]) for n in cli["nodes"]])


def main() -> None:
    print("chash %s from %s; CLI %s; seed %d (CHASH_TEST_SEED)"
          % (chash.library_version(), chash.library_path(), CLI or "none", SEED),
          file=sys.stderr)
    unittest.main()


if __name__ == "__main__":
    main()
