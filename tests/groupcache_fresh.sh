#!/bin/sh
# groupcache_fresh.sh TEST_GROUPCACHE SOURCE_DIR - regenerate vectors from the
# real Go groupcache with a random seed and check the library against them.
set -eu
test_bin=$1
src=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
echo "seed $seed"
"$src/tools/groupcache/gen_vectors.sh" "$seed" "$out"
"$test_bin" "$out"
