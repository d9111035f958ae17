#!/bin/sh
# libmemcached_fresh.sh TEST_LIBMEMCACHED - the ketama preset against
# libmemcached itself, on random pools and keys from a random seed.
set -eu
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
exec "$1" --seed "$seed" --cases 100 --keys 300
