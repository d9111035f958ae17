#!/bin/sh
# twemproxy_fresh.sh TEST_COMPAT CHASH SOURCE_DIR - fresh vectors from the
# real nutcracker (in front of real redis-servers on loopback) with a random
# seed; checks the library (test_compat) and `chash lookup` on each
# generated nutcracker YAML config.
set -eu
test_bin=$1
chash=$2
src=$3
out=$(mktemp)
trap 'rm -f "$out"' EXIT
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
echo "seed $seed"
python3 "$src/tools/compat/twemproxy_oracle.py" --seed "$seed" --out "$out" --cases 60 \
    --keys 300 --chash "$chash"
"$test_bin" "$out"
