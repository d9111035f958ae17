#!/bin/sh
# Regenerate groupcache test vectors from the real Go package, offline.
# Usage: tools/groupcache/gen_vectors.sh SEED OUTPUT
#   e.g. tools/groupcache/gen_vectors.sh 1 tests/vectors/groupcache.txt
# Needs Debian golang-go and golang-github-golang-groupcache-dev.
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 SEED OUTPUT" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
gopath=${GOPATH_GROUPCACHE:-/usr/share/gocode}
if [ ! -d "$gopath/src/github.com/golang/groupcache/consistenthash" ]; then
    echo "$0: groupcache not found under $gopath (apt install golang-github-golang-groupcache-dev)" >&2
    exit 1
fi
pkgver=$(dpkg-query -W -f '${Version}' golang-github-golang-groupcache-dev 2>/dev/null || true)
export GOPATH="$gopath" GO111MODULE=off GOFLAGS= GOPROXY=off GOTOOLCHAIN=local
export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/chash-gocache}"
go run "$here/gen_vectors.go" -seed "$1" -out "$2" -pkgver "$pkgver"
