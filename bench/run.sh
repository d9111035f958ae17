#!/usr/bin/env bash
# bench/run.sh - every benchmark in one run, side by side, then the summary
# the README quotes: our ring against Go's groupcache ring and our CRC32
# against zlib's, as ratios of medians measured in this same run.
# Usage: bench/run.sh [BUILD_DIR]   (default: build, a Release build)
# Writes the raw JSON rows to BUILD_DIR/bench.jsonl. Never asserts a time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
out="$build/bench.jsonl"
: >"$out"
echo "== chash bench (ring, bare CRC32, binary-search ring)" >&2
"$build/chash" bench --json | tee -a "$out" >/dev/null
echo "== bench_crc32 (chash_crc32 vs zlib crc32)" >&2
"$build/bench/bench_crc32" | grep '^{' | tee -a "$out" >/dev/null
if [ -x "$build/bench/bench_ketama" ]; then
    echo "== bench_ketama (ketama preset vs libmemcached memcached_generate_hash)" >&2
    "$build/bench/bench_ketama" | tee /dev/stderr | grep '^{' >>"$out"
fi
echo "== Go groupcache consistenthash" >&2
"$here/groupcache/run.sh" | grep '^{' | tee -a "$out" >/dev/null
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def pick(**kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]
print("\nLookup and build, same keys (key:0 .. key:999999), medians of passes")
print(f"{'nodes':>6} {'vnodes':>6} {'scheme':<11} {'go ns':>8} {'ours ns':>8} {'speedup':>8} "
      f"{'go build ms':>11} {'ours ms':>8} {'speedup':>8} {'crc32 ns':>8} {'bsearch ns':>10} {'B/point':>7} {'max/mean':>8}")
summary = []
for n in (10, 100, 1000):
    for v in (50, 160):
        go = pick(algo="groupcache-go", nodes=n, vnodes=v)
        for scheme in ("groupcache", "native"):
            ring = pick(bench="lookup", algo="ring", scheme=scheme, nodes=n, vnodes=v)
            crc = pick(bench="lookup", algo="crc32", scheme=scheme, nodes=n, vnodes=v)
            bs = pick(bench="lookup", algo="bsearch", scheme=scheme, nodes=n, vnodes=v)
            if not (go and ring):
                continue
            g, r = go[0], ring[0]
            row = dict(nodes=n, vnodes=v, scheme=scheme, go_ns=g["ns_per_lookup"],
                       ns=r["ns_per_lookup"], lookup_speedup=g["ns_per_lookup"] / r["ns_per_lookup"],
                       go_build_ms=g["build_ms"], build_ms=r["build_ms"],
                       build_speedup=g["build_ms"] / r["build_ms"], crc32_ns=crc[0]["ns_per_lookup"],
                       bsearch_ns=bs[0]["ns_per_lookup"], bytes_per_point=r["bytes_per_point"],
                       max_over_mean=r["max_over_mean"], go_max_over_mean=g["max_over_mean"])
            summary.append(row)
            print(f"{n:>6} {v:>6} {scheme:<11} {row['go_ns']:>8.1f} {row['ns']:>8.1f} {row['lookup_speedup']:>7.1f}x "
                  f"{row['go_build_ms']:>11.3f} {row['build_ms']:>8.3f} {row['build_speedup']:>7.1f}x "
                  f"{row['crc32_ns']:>8.1f} {row['bsearch_ns']:>10.1f} {row['bytes_per_point']:>7.2f} {row['max_over_mean']:>8.3f}")
crc = pick(bench="crc32")
if crc:
    print("\nCRC32, ns per call (median), speedup over zlib crc32() in the same run")
    print(f"{'bytes':>6} {'zlib':>9} {'chash':>9} {'speedup':>8}")
    for r in crc:
        print(f"{r['bytes']:>6} {r['zlib_ns']:>9.1f} {r['chash_ns']:>9.1f} {r['speedup_vs_zlib']:>7.2f}x")
for row in summary:
    print(json.dumps(dict(bench="summary", **row)))
PY
