#!/usr/bin/env bash
# bench/proxy_instr.sh - what chash-proxy's own code costs per request, as
# counts that do not move with the machine's load: instructions per request
# (valgrind's callgrind: the proxy and libc, not the kernel) and system calls
# per request (perf stat, raw_syscalls:sys_enter, the proxy run natively),
# with one client, so no request shares a wake-up with another. The same
# binary gives the same counts on a busy machine and a quiet one, so a
# change of a few percent shows here when bench/proxy.sh's CPU per request
# (which includes the kernel's socket work, and batching that depends on
# timing) cannot tell it from noise. It says nothing of the kernel's share
# (most of a proxy's CPU on loopback: see docs/proxy.md): read both.
#
# Starts 4 redis-server on free 127.0.0.1 ports and each binary with
# --workers 1 on one pool (ketama, fnv1a_64), warms its connections, then
# for SET and GET at -P 1 and -P 16 (redis-benchmark -c 1) zeroes callgrind's
# counters, runs the requests and dumps them.
#
# Usage: bench/proxy_instr.sh [--proxy PATH] [--baseline PATH] [--requests N]
#   --proxy     chash-proxy binary (default build/proxy/chash-proxy; a Release build)
#   --baseline  a second binary: its counts beside, and new/base
#   --requests  requests per -P 1 test (default 20000; -P 16 runs 8 times as many)
# Needs: redis-server, redis-benchmark, redis-cli, valgrind, python3; perf for
# the system calls (left out without it). Never asserts a count: the exit
# status says only whether it ran. Every process it starts is stopped by PID.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
proxy_bin=$here/../build/proxy/chash-proxy
base_bin=
requests=20000
usage() { sed -n '/^# Usage:/,/^# status says/p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
    --proxy) proxy_bin=$2; shift 2 ;;
    --baseline) base_bin=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/proxy_instr.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
case $requests in '' | *[!0-9]*) echo "bench/proxy_instr.sh: --requests takes a number" >&2; exit 2 ;; esac
for tool in redis-server redis-benchmark redis-cli valgrind callgrind_control python3; do
    command -v "$tool" >/dev/null || { echo "bench/proxy_instr.sh: '$tool' not found" >&2; exit 2; }
done
for b in "$proxy_bin" ${base_bin:+"$base_bin"}; do
    [ -x "$b" ] || { echo "bench/proxy_instr.sh: no chash-proxy at $b" >&2; exit 2; }
done
has_perf=0
perf stat -e raw_syscalls:sys_enter -x, -o /dev/null true 2>/dev/null && has_perf=1

work=$(mktemp -d "${TMPDIR:-/tmp}/proxy-instr.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "bench/proxy_instr.sh: interrupted" >&2; exit 130' INT TERM
wait_ping() { # wait_ping PORT: until a redis (or the proxy) answers PING
    for _ in $(seq 300); do
        redis-cli -h 127.0.0.1 -p "$1" PING >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench/proxy_instr.sh: nothing answers on 127.0.0.1:$1" >&2
    return 1
}

read -r -a ports <<<"$(python3 - <<'PY'
import random, socket
got, socks = [], []
for port in random.sample(range(20000, 32000), 2000):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    socks.append(s)
    got.append(port)
    if len(got) == 8:
        break
print(" ".join(map(str, got)))
PY
)"
[ "${#ports[@]}" -eq 8 ] || { echo "bench/proxy_instr.sh: could not find 8 free ports" >&2; exit 1; }
for i in 0 1 2 3; do
    redis-server --bind 127.0.0.1 --port "${ports[$i]}" --save '' --appendonly no \
        --dir "$work" >"$work/redis$i.log" 2>&1 &
    pids+=("$!")
done
for i in 0 1 2 3; do wait_ping "${ports[$i]}"; done
write_conf() { # write_conf FILE PORT
    {
        echo "redis_pool:"
        echo "  listen: 127.0.0.1:$2"
        echo "  redis: true"
        echo "  hash: fnv1a_64"
        echo "  distribution: ketama"
        echo "  servers:"
        for i in 0 1 2 3; do echo "   - 127.0.0.1:${ports[$i]}:1 redis$i"; done
    } >"$1"
}

tests=("set 1" "get 1" "set 16" "get 16")
: >"$work/rows"
measure() { # measure NAME BINARY PORT STATS_PORT
    local name=$1 bin=$2 port=$3 stats=$4 vp t n pp calls
    write_conf "$work/$name.yml" "$port"
    # Instructions: under callgrind, counters zeroed before each test and
    # dumped after it (its start-up and the warm-up are not counted).
    (cd "$work" && exec valgrind --tool=callgrind --callgrind-out-file="$work/$name.%p.cg" \
        "$bin" -c "$work/$name.yml" -s "$stats" -a 127.0.0.1 --workers 1) >"$work/$name.log" 2>&1 &
    vp=$!
    pids+=("$vp")
    wait_ping "$port"
    redis-benchmark -h 127.0.0.1 -p "$port" -c 1 -n 2000 -t set,get -r 100000 -q >/dev/null
    for t in "${tests[@]}"; do
        set -- $t
        n=$((requests * ($2 == 1 ? 1 : 8)))
        echo "  $name $1 -P $2: $n requests under callgrind" >&2
        (cd "$work" && callgrind_control -z "$vp" >/dev/null)
        redis-benchmark -h 127.0.0.1 -p "$port" -c 1 -n "$n" -t "$1" -r 100000 -P "$2" -q >/dev/null
        (cd "$work" && callgrind_control -d "$name:$1:$2:$n" "$vp" >/dev/null)
    done
    kill -TERM "$vp"
    wait "$vp" 2>/dev/null || true
    # System calls: the same binary natively, perf stat around each test.
    if [ "$has_perf" = 1 ]; then
        "$bin" -c "$work/$name.yml" -s "$stats" -a 127.0.0.1 --workers 1 >"$work/$name.native.log" 2>&1 &
        vp=$!
        pids+=("$vp")
        wait_ping "$port"
        redis-benchmark -h 127.0.0.1 -p "$port" -c 1 -n 2000 -t set,get -r 100000 -q >/dev/null
        for t in "${tests[@]}"; do
            set -- $t
            n=$((requests * ($2 == 1 ? 1 : 8)))
            perf stat -e raw_syscalls:sys_enter -x, -o "$work/perf.txt" -p "$vp" 2>/dev/null &
            pp=$!
            sleep 0.5 # attached and enabled
            redis-benchmark -h 127.0.0.1 -p "$port" -c 1 -n "$n" -t "$1" -r 100000 -P "$2" -q >/dev/null
            kill -INT "$pp"
            wait "$pp" || true
            calls=$(awk -F, '$3 ~ /raw_syscalls:sys_enter/ && $1 ~ /^[0-9]+$/ {print $1}' "$work/perf.txt")
            echo "syscalls $name $1 $2 $n ${calls:-}" >>"$work/rows"
        done
        kill -TERM "$vp"
        wait "$vp" 2>/dev/null || true
    fi
    local f
    for f in "$work/$name".*.cg*; do
        # "desc: Trigger: Client Request: dump NAME:TEST:P:N" and "totals: IR"
        awk -v name="$name" '/^desc: Trigger/ {split($NF, d, ":")} /^totals:/ {t = $2}
            END { if (d[1] == name) print "instr", name, d[2], d[3], d[4], t }' "$f" >>"$work/rows"
    done
}

echo "== bench/proxy_instr.sh: $(redis-server --version | cut -d' ' -f1-3), $requests requests at -P 1" >&2
measure new "$proxy_bin" "${ports[4]}" "${ports[5]}"
[ -z "$base_bin" ] || measure base "$base_bin" "${ports[6]}" "${ports[7]}"

python3 - "$work/rows" "$proxy_bin" "$base_bin" "$has_perf" <<'PY'
import sys
rows, proxy_bin, base_bin, has_perf = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
got = {}
for line in open(rows):
    f = line.split()
    if len(f) == 6 and f[5].isdigit():
        got[(f[0], f[1], f[2].upper(), int(f[3]))] = int(f[5]) / int(f[4])
print(f"\nchash-proxy --workers 1, one client (redis-benchmark -c 1), per request: instructions "
      f"of the proxy and libc (callgrind){' and system calls (perf stat)' if has_perf else ''}")
print(f"new: {proxy_bin}" + (f"\nbase: {base_bin}" if base_bin else ""))
head = f"{'test':<5} {'P':>2}  {'instr new':>9}" + (f" {'base':>9} {'new/base':>8}" if base_bin else "")
if has_perf:
    head += f"  {'syscalls new':>12}" + (f" {'base':>7}" if base_bin else "")
print(head)
print("-" * len(head))
for test in ("SET", "GET"):
    for p in (1, 16):
        n, b = got.get(("instr", "new", test, p)), got.get(("instr", "base", test, p))
        line = f"{test:<5} {p:>2}  {n or 0:>9.0f}"
        if base_bin:
            line += f" {b or 0:>9.0f} {(n / b if n and b else 0):>8.3f}"
        if has_perf:
            sn, sb = got.get(("syscalls", "new", test, p)), got.get(("syscalls", "base", test, p))
            line += f"  {sn or 0:>12.2f}" + (f" {sb or 0:>7.2f}" if base_bin else "")
        print(line)
PY
