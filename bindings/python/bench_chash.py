#!/usr/bin/env python3
"""What a lookup costs from Python: microseconds per call, and how much of it
is the ctypes call itself.

    CHASH_LIBRARY=build/libchash.so python3 bindings/python/bench_chash.py [--keys N]

Rows:
  ctypes no-op        chash_version(): the bare cost of one ctypes call
  raw chash_lookup    chash_lookup through ctypes with bytes keys, no Ring
                      (the floor for any lookup from Python)
  Ring.lookup bytes   the bindings' lookup, bytes keys, returning the name
  Ring.lookup str     the same with str keys (UTF-8 encoding included)
  Ring.lookup_n 3     a replica list of 3
The C lookup itself is 10-50 ns for these (see `chash bench`); everything
above that is Python and ctypes. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time
from typing import Callable, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chash  # noqa: E402


def best_of(rounds: int, fn: Callable[[], None], n: int) -> float:
    """Best microseconds per item over `rounds` runs of fn (n items each)."""
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    n = args.keys
    keys_b: List[bytes] = [b"key:%d" % i for i in range(n)]
    keys_s: List[str] = ["key:%d" % i for i in range(n)]

    version = chash._fast.chash_version

    def noop() -> None:
        for _ in keys_b:
            version()

    print("libchash %s (%s), Python %s, %d keys, best of %d rounds"
          % (chash.library_version(), chash.library_path(), sys.version.split()[0], n,
             args.rounds))
    print("ctypes no-op call: %.3f us" % best_of(args.rounds, noop, n))
    print()
    head = ("algo", "nodes", "raw chash_lookup", "Ring.lookup bytes", "Ring.lookup str",
            "Ring.lookup_n 3")
    print("%-11s %6s %17s %18s %16s %16s" % head)
    for algo, nodes in (("ring", 10), ("ring", 1000), ("jump", 1000), ("maglev", 1000),
                        ("multiprobe", 1000), ("rendezvous", 100)):
        with chash.Ring(algo) as ring:
            ring.add_many(["node-%d" % i for i in range(nodes)])
            c = ring._get().c
            lookup = chash._fast.chash_lookup
            size_t, byref = ctypes.c_size_t, ctypes.byref

            def raw() -> None:
                for k in keys_b:
                    node = size_t()
                    lookup(c, k, len(k), byref(node))

            def by_bytes() -> None:
                f = ring.lookup
                for k in keys_b:
                    f(k)

            def by_str() -> None:
                f = ring.lookup
                for k in keys_s:
                    f(k)

            def replicas() -> None:
                f = ring.lookup_n
                for k in keys_b:
                    f(k, 3)

            cells = [best_of(args.rounds, fn, n) for fn in (raw, by_bytes, by_str)]
            if algo in ("ring", "multiprobe", "rendezvous"):
                rep = "%.3f" % best_of(args.rounds, replicas, n)
            else:
                rep = "-"  # no ring order: lookup_n raises CHASH_ENOTSUP
            print("%-11s %6d %14.3f us %15.3f us %13.3f us %13s us"
                  % (algo, nodes, cells[0], cells[1], cells[2], rep))


if __name__ == "__main__":
    main()
