#!/usr/bin/env bash
# go_test.sh - test or benchmark the Go binding offline, linked statically
# with a CMake build's libchash.a. ctest's go_consistenthash runs `test`.
#
# Usage: bindings/go/go_test.sh LIBCHASH_A WORK_DIR [test|bench]
#   test   go vet; go test (ours and groupcache's own consistenthash_test.go);
#          the same under -race unless GO_RACE=0; the comparison with
#          groupcache and a -benchtime=100x smoke of every benchmark
#   bench  the benchmarks for real (-benchtime=1s -count=3, or BENCH_FLAGS),
#          then a table of medians
# Environment: GO (default go), CC (the compiler libchash.a was built with),
# CHASH_CGO_FLAGS (e.g. -fsanitize=address,undefined for an ASan libchash.a),
# GO_ASAN=1 (go test -asan), GROUPCACHE_SRC (default Debian's
# /usr/share/gocode/src/github.com/golang/groupcache).
# Needs no network: the module requires nothing, and groupcache comes from
# the Debian package golang-github-golang-groupcache-dev.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 LIBCHASH_A WORK_DIR [test|bench]" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
lib=$1
work=$(mkdir -p "$2" && cd "$2" && pwd)
mode=${3:-test}
go=${GO:-go}
gcsrc=${GROUPCACHE_SRC:-/usr/share/gocode/src/github.com/golang/groupcache}

# A directory holding libchash.a alone, so that the package's -lchash links
# it statically (next to libchash.so, the linker would take the .so).
mkdir -p "$work/lib"
cp -f "$lib" "$work/lib/libchash.a"

export GOPATH="$work/gopath" GOMODCACHE="$work/gopath/pkg/mod" GOCACHE="$work/gocache"
export GO111MODULE=on GOFLAGS='' GOPROXY=off GOSUMDB=off GONOSUMDB='' GOWORK=off GOTOOLCHAIN=local
export CGO_ENABLED=1
export CGO_CFLAGS="-O2 -g ${CHASH_CGO_FLAGS:-}"
export CGO_LDFLAGS="-L$work/lib ${CHASH_CGO_FLAGS:-}"
asan=
if [ "${GO_ASAN:-0}" = 1 ]; then
    asan=-asan
fi

# groupcache as a module: Debian ships the source without a go.mod, which a
# `replace` to a directory needs, so give a copy one. The bench module then
# gets a go.mod naming it (-modfile); the committed bench/go.mod cannot know
# where this machine keeps groupcache.
have_gc=0
if [ -f "$gcsrc/consistenthash/consistenthash.go" ]; then
    have_gc=1
    mkdir -p "$work/groupcache/consistenthash"
    cp -f "$gcsrc/consistenthash/consistenthash.go" "$work/groupcache/consistenthash/"
    printf 'module github.com/golang/groupcache\n\ngo 1.12\n' >"$work/groupcache/go.mod"
    cat >"$work/bench.mod" <<EOF
module github.com/chash/chash/bindings/go/bench

go 1.19

require (
	github.com/chash/chash/bindings/go v0.0.0
	github.com/golang/groupcache v0.0.0
)

replace github.com/chash/chash/bindings/go => $here

replace github.com/golang/groupcache => $work/groupcache
EOF
fi

bench_go() {
    (cd "$here/bench" && "$go" test -modfile="$work/bench.mod" $asan "$@" .)
}

case $mode in
test)
    "$go" version
    cd "$here"
    "$go" vet ./...
    # -v so the log names every test that ran, groupcache's own included.
    "$go" test $asan -count=1 -v ./... 2>&1 | grep -v '^=== '
    if [ "${GO_RACE:-1}" = 1 ] && [ -z "$asan" ]; then
        "$go" test -race -count=1 ./...
    fi
    if [ $have_gc = 1 ]; then
        bench_go -count=1 -v -short -run . -bench . -benchtime=100x 2>&1 | grep -v '^=== '
    else
        echo "groupcache not found at $gcsrc (golang-github-golang-groupcache-dev):" \
            "comparison with it skipped"
    fi
    ;;
bench)
    if [ $have_gc = 0 ]; then
        echo "$0: groupcache not found at $gcsrc" >&2
        exit 1
    fi
    out="$work/bench.txt"
    # shellcheck disable=SC2086
    bench_go -run XXX -bench . ${BENCH_FLAGS:--benchtime=1s -count=3} | tee "$out"
    # Medians of the -count runs, ns/op, one row per benchmark.
    awk '/^Benchmark/ && / ns\/op/ {
            name = $1; sub(/-[0-9]+$/, "", name)
            for (i = 2; i <= NF; i++) if ($(i+1) == "ns/op") v = $i
            n[name]++; val[name, n[name]] = v
            if (!(name in seen)) { seen[name] = 1; order[++rows] = name }
        }
        END {
            printf "\n%-60s %10s  (median of runs)\n", "benchmark", "ns/op"
            for (r = 1; r <= rows; r++) {
                name = order[r]; c = n[name]
                for (i = 1; i <= c; i++) a[i] = val[name, i]
                for (i = 2; i <= c; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) {
                    t = a[j]; a[j] = a[j-1]; a[j-1] = t }
                med = (c % 2) ? a[(c+1)/2] : (a[c/2] + a[c/2+1]) / 2
                printf "%-60s %10.1f\n", name, med
            }
        }' "$out"
    ;;
*)
    echo "$0: unknown mode $mode" >&2
    exit 2
    ;;
esac
