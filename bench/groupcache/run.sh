#!/bin/sh
# Run the Go groupcache consistenthash baseline benchmark, offline.
# Usage: bench/groupcache/run.sh [-keys N] [-passes P]
# Needs Debian golang-go and golang-github-golang-groupcache-dev.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
gopath=${GOPATH_GROUPCACHE:-/usr/share/gocode}
if [ ! -d "$gopath/src/github.com/golang/groupcache/consistenthash" ]; then
    echo "$0: groupcache not found under $gopath (apt install golang-github-golang-groupcache-dev)" >&2
    exit 1
fi
export GOPATH="$gopath" GO111MODULE=off GOFLAGS= GOPROXY=off GOTOOLCHAIN=local
export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/chash-gocache}"
# Build first so compile time is not part of the run and errors are caught.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/bench" "$here/bench.go"
"$tmp/bench" "$@"
