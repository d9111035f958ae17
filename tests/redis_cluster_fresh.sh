#!/bin/sh
# redis_cluster_fresh.sh TEST_REDIS_CLUSTER CHASH SOURCE_DIR - a cluster-mode
# redis-server on loopback, with a random seed: the library's slots against
# CLUSTER KEYSLOT (test_redis_cluster), and `chash lookup --scheme
# redis-cluster` against the server's slot table (redis_cluster_oracle.py).
set -eu
test_bin=$1
chash=$2
src=$3
if ! command -v redis-server >/dev/null 2>&1; then
    echo "SKIP: redis-server not found (Debian package redis-server)"
    exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
echo "seed $seed"
python3 "$src/tools/compat/redis_cluster_oracle.py" --seed "$seed" --out "$out" --keys 5000 \
    --chash "$chash"
"$test_bin" "$out"
