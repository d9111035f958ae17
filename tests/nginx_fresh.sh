#!/bin/sh
# nginx_fresh.sh TEST_COMPAT CHASH SOURCE_DIR - fresh vectors from the real
# nginx (`hash $arg_k consistent`, loopback only) with a random seed; checks
# the library (test_compat) and `chash lookup` on each case's server lines.
set -eu
test_bin=$1
chash=$2
src=$3
out=$(mktemp)
trap 'rm -f "$out"' EXIT
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
echo "seed $seed"
python3 "$src/tools/compat/nginx_oracle.py" --seed "$seed" --out "$out" --cases 60 \
    --keys 300 --chash "$chash"
"$test_bin" "$out"
