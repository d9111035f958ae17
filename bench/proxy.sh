#!/usr/bin/env bash
# bench/proxy.sh - chash-proxy against nutcracker (twemproxy) and against the
# servers themselves, in one run, side by side, on loopback only.
#
# Starts 4 redis-server and 4 memcached on free 127.0.0.1 ports, then
# nutcracker and chash-proxy (--workers one per core, and --workers 1 for a
# single-core comparison: nutcracker is single-threaded; the default is half
# the cores) from one YAML config
# (distribution ketama, hash fnv1a_64, so both put every key on the same
# server). Then, in rounds whose target order rotates, so that noise from
# the machine's other work falls on every contender alike:
#   redis      redis-benchmark -t set,get -n 200000 -c 50 -r 100000, -P 1 and -P 16,
#              against one redis directly, nutcracker, chash-proxy (both modes);
#              and at a load that leaves the cores idle part of the time, 5
#              clients at -P 1 (a quarter of the requests), for the latency a
#              proxy adds over direct
#   memcached  memcaslap (libmemcached-tools; 90% get, 10% set) and
#              bench/proxy/mcload.c (pipelined set,get with p50/p99, -P 1 and -P 16)
#              against one memcached directly, nutcracker, chash-proxy
#   mget       MGET of 100 and 1000 random keys (1 client: latency alone; 20
#              clients: under load) against one redis holding every key,
#              nutcracker and chash-proxy
#   mixed      bench/proxy/mixload.c, 50 clients at -P 1: 60% GET, 25% SET,
#              10% transactions (MULTI, SET, INCR, EXEC on keys of one hash
#              tag, in one write) and 5% PUBLISH to 8 channels, with 4
#              subscribers (3 SUBSCRIBE every channel, 1 PSUBSCRIBE news:*)
#              that must receive published x 4 messages, no more, no less;
#              rows ALL (per command: a transaction is 4), GET, SET, TXN,
#              PUBLISH, MSG (publish to delivery). Against one redis
#              directly and chash-proxy, through a pool with hash_tag "{}"
#              (mixed_pool); not nutcracker, which has neither MULTI nor
#              SUBSCRIBE; a --baseline that cannot serve it is left out.
#              Beside it, as a control, tool mixload-plain: the same clients
#              with its GET and SET alone (get=60,set=25, no subscriber), on
#              every target of the suite, the baseline too, so what the
#              transactions and messages add is the difference of the two
#   cluster    (not in the default list: --workload cluster, or add it) the
#              proxy in front of a Redis Cluster against the same proxy on a
#              ketama pool of as many plain servers: 3 redis-server in cluster
#              mode (no replicas, joined by redis-cli --cluster create) and 3
#              plain ones; every chash-proxy gets two more pools, 'cluster'
#              (distribution redis-cluster, the 3 nodes as seeds) and
#              'ketama' (hash fnv1a_64, the 3 plain servers), both filled
#              with the keys first; redis-benchmark -t set,get as in redis
#              (-P 1 and -P 16) on both pools, back to back, through
#              chash-proxy and chash-proxy-w1 (and the baseline). A last
#              table gives cluster over ketama: the proxy's CPU per request
#              (and sys/req, ops/s), the ratio of the medians and within each
#              round, and the cluster pool's counters from each proxy's stats
#              (errors, MOVED/ASK followed, requests per shard). A --baseline
#              whose configuration check refuses redis-cluster runs the
#              ketama pool alone, said so. The nodes' CPU includes their
#              cluster bus. Not nutcracker (no cluster), not direct (a node
#              answers -MOVED for the other nodes' slots). Starting the cluster
#              takes about 3 s.
#   tls        (not in the default list: --workload tls, or add it) the cost
#              of TLS: redis-benchmark -t set,get as in redis (-P 1 and -P 16,
#              with --tls --cacert on the TLS targets) against chash-proxy and
#              chash-proxy-w1 on three pools of the same keys and servers
#              placement (hash fnv1a_64, ketama, the same server names):
#              their plaintext redis_pool ('none'), tls_pool, whose clients
#              speak TLS to the proxy and the proxy plaintext to the 4 redis
#              ('clients'), and tls_both_pool, TLS on both sides, to 4 more
#              redis-server on their --tls-port alone ('both'); against what a
#              twemproxy user does today, stunnel (Debian's stunnel4, a
#              bench-only dependency: the target is left out, said so, when it
#              is missing) terminating TLS in front of nutcracker
#              (stunnel+nutcracker, whose cpu/req is stunnel's and
#              nutcracker's summed, each part in its row too; stunnel runs a
#              thread per connection, so its CPU is read from /proc/PID/stat,
#              which keeps the threads gone, to the clock tick), and
#              nutcracker plaintext; and one redis-server directly, over its
#              TLS port and its plaintext one. Certificates are made in the
#              work directory with the openssl CLI: an ECDSA P-256 CA and a
#              server certificate for DNS:localhost and IP:127.0.0.1, which
#              every TLS target presents and every TLS client verifies. A
#              last table gives each target's CPU per request with and
#              without TLS, what TLS adds (us and ratio, of the medians and
#              within each round) and chash-proxy with TLS over
#              stunnel+nutcracker; then each proxy's TLS pools' counters
#              (handshakes, handshake errors, errors). A --baseline whose
#              configuration check refuses the tls_* keys is left out of it,
#              said so.
# and prints medians over the rounds: ops/s, p50, p99 and chash-proxy's ratios
# to nutcracker and to direct, then how the issue's bars fare. Every
# measurement is also a JSON row (one object per line) in the output file.
# Every row has the CPU per request of the proxy, of the servers and of the
# load generator (its own CPU, so it is never mistaken for the proxy's);
# with --syscalls, system calls per request of the proxy and the servers.
#
# With --baseline, a second chash-proxy binary (say, the commit before a
# change) runs beside the first as 'base' and 'base-w1', with the same
# configuration and flags as 'chash-proxy' and 'chash-proxy-w1', each next to
# its counterpart in the rotation; its rows are in every table, every
# proxy row says which binary it ran ("binary"), and a last table gives
# chash-proxy over base: ops/s and CPU per request, the ratio of the medians
# and the ratio within each round.
# Benchmarks never assert a time: the exit status says only whether it ran.
#
# Usage: bench/proxy.sh [--proxy PATH] [--baseline PATH] [--out FILE] [--rounds N] [--requests N]
#                       [--workload LIST] [--syscalls] [--proxy-args ARGS] [--base-args ARGS]
#   --proxy     chash-proxy binary (default build/proxy/chash-proxy; use a Release build)
#   --baseline  a second chash-proxy binary to compare it with (targets base, base-w1);
#               it may be the same binary with other --base-args
#   --proxy-args, --base-args
#               more options for chash-proxy (and -w1), and for base (and base-w1),
#               split at spaces: e.g. the event loops side by side with
#               --baseline build/proxy/chash-proxy --proxy-args "--event-loop io_uring"
#               --base-args "--event-loop epoll"
#   --out       JSON rows (default build/bench-proxy.jsonl)
#   --rounds    rounds of every measurement; medians are reported (default 3)
#   --requests  redis-benchmark / mcload requests per test, mixload operations (default 200000)
#   --workload  the suites to run, comma-separated: redis, memcached, mget, mixed, cluster, tls
#               (default the first four; e.g. --workload redis for plain SET/GET
#               alone, --workload cluster for the proxy in front of a Redis Cluster,
#               --workload tls for the cost of TLS)
#   --syscalls  also count system calls per request of the proxy and of the
#               servers (perf stat, raw_syscalls:sys_enter, attached around each
#               run; slows every process a little while on, so compare only
#               runs that both had it)
# Needs: redis-server, redis-benchmark, redis-cli, memcached, nutcracker,
# python3, a C compiler; memcaslap is used when present, perf for --syscalls,
# redis-server 7 or later for the cluster suite (--cluster-port), openssl and
# a redis-server and redis-benchmark built with TLS for the tls suite, and
# stunnel4 for its stunnel+nutcracker target
# (Debian: apt-get install redis-server memcached nutcracker
# libmemcached-tools linux-perf openssl stunnel4).
# Every process it starts is stopped by PID on exit, error or Ctrl-C.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
proxy_bin=$root/build/proxy/chash-proxy
base_bin=
out=$root/build/bench-proxy.jsonl
rounds=3
requests=200000
workloads=redis,memcached,mget,mixed
count_syscalls=0
proxy_args=()
base_args=()

usage() { sed -n '/^# Usage:/,/^# Every process/p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
    --proxy) proxy_bin=$2; shift 2 ;;
    --baseline) base_bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --workload) workloads=$2; shift 2 ;;
    --syscalls) count_syscalls=1; shift ;;
    --proxy-args) read -r -a proxy_args <<<"$2"; shift 2 ;;
    --base-args) read -r -a base_args <<<"$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/proxy.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
case $rounds$requests in *[!0-9]*) echo "bench/proxy.sh: --rounds and --requests take numbers" >&2; exit 2 ;; esac
declare -A run_suite=()
IFS=, read -r -a _suites <<<"$workloads"
for w in "${_suites[@]}"; do
    case $w in
    redis | memcached | mget | mixed | cluster | tls) run_suite[$w]=1 ;;
    *) echo "bench/proxy.sh: --workload: unknown suite '$w' (redis, memcached, mget, mixed, cluster, tls)" >&2; exit 2 ;;
    esac
done
[ "${#run_suite[@]}" -gt 0 ] || { echo "bench/proxy.sh: --workload: no suite" >&2; exit 2; }
wants() { [ -n "${run_suite[$1]:-}" ]; }

for tool in redis-server redis-benchmark redis-cli memcached nutcracker python3 "${CC:-cc}"; do
    command -v "$tool" >/dev/null || { echo "bench/proxy.sh: '$tool' not found" >&2; exit 2; }
done
[ -x "$proxy_bin" ] || { echo "bench/proxy.sh: no chash-proxy at $proxy_bin (--proxy PATH)" >&2; exit 2; }
[ -z "$base_bin" ] || [ -x "$base_bin" ] ||
    { echo "bench/proxy.sh: no chash-proxy at $base_bin (--baseline PATH)" >&2; exit 2; }
if [ "$count_syscalls" = 1 ]; then
    command -v perf >/dev/null || { echo "bench/proxy.sh: --syscalls needs perf (linux-perf)" >&2; exit 2; }
    perf stat -e raw_syscalls:sys_enter -x, -o /dev/null true 2>/dev/null ||
        { echo "bench/proxy.sh: --syscalls: perf cannot count raw_syscalls:sys_enter here" >&2; exit 2; }
fi
has_memcaslap=$(command -v memcaslap || command -v memaslap || true)
if wants cluster; then
    _v=$(redis-server --version | sed -n 's/.* v=\([0-9]*\)\..*/\1/p')
    [ "${_v:-0}" -ge 7 ] ||
        { echo "bench/proxy.sh: the cluster suite needs redis-server 7 or later (--cluster-port)" >&2; exit 2; }
fi
stunnel_bin= # the tls suite's stunnel+nutcracker target: a bench-only dependency, skipped without it
if wants tls; then
    command -v openssl >/dev/null || { echo "bench/proxy.sh: the tls suite needs the openssl CLI" >&2; exit 2; }
    stunnel_bin=$(command -v stunnel4 || command -v stunnel || true)
    [ -n "$stunnel_bin" ] ||
        echo "bench/proxy.sh: stunnel4 not found (Debian: apt-get install stunnel4; needed by this" \
            "benchmark alone): the tls suite runs without its stunnel+nutcracker target" >&2
fi

# --- processes: every one we start is recorded and stopped by its PID ------
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-proxy.XXXXXX")
pids=()
perf_pids=() # --syscalls: the perf stat of the run going on
declare -A pid_of # NAME -> PID, for the CPU accounting
cleanup() {
    local pid
    for pid in "${perf_pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
    if [ "${keep_work:-0}" = 1 ]; then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap 'keep_work=1; echo "bench/proxy.sh: failed (line $LINENO)" >&2' ERR
trap cleanup EXIT
trap 'echo "bench/proxy.sh: interrupted" >&2; exit 130' INT TERM
start() { # start NAME CMD...: runs CMD in the background, logs to $work/NAME.log
    local name=$1; shift
    "$@" >"$work/$name.log" 2>&1 &
    pids+=("$!")
    pid_of[$name]=$!
}
clk_tck=$(getconf CLK_TCK)
stat_cpu_pids= # processes whose threads come and go (stunnel: one a connection)
cpu_ns() { # cpu_ns PID...: CPU time of every thread of the PIDs so far, in ns
    local total=0 pid t ns _ f
    for pid in "$@"; do
        case " $stat_cpu_pids " in
        *" $pid "*)
            # /proc/PID/stat's utime and stime count the threads gone too,
            # where task/*/schedstat has the living ones alone; to the tick.
            read -r f 2>/dev/null <"/proc/$pid/stat" || continue
            read -r -a f <<<"${f##*) }"
            total=$((total + (f[11] + f[12]) * 1000000000 / clk_tck))
            continue ;;
        esac
        for t in /proc/"$pid"/task/*/schedstat; do
            read -r ns _ 2>/dev/null <"$t" || continue
            total=$((total + ns))
        done
    done
    echo "$total"
}
wait_port() { # wait_port PORT NAME: until something accepts on 127.0.0.1:PORT
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "bench/proxy.sh: $2 did not listen on 127.0.0.1:$1; its log:" >&2
    cat "$work/$2.log" >&2 || true
    return 1
}

# Ports below the ephemeral range, so no outgoing connection takes one
# between choosing it and binding it.
nports=20
[ -n "$base_bin" ] && nports=28
ncluster=0 # the cluster suite's, after those: 3 nodes, their 3 bus ports, 3 plain redis, 2 pools a proxy
if wants cluster; then ncluster=$((9 + 4)); [ -z "$base_bin" ] || ncluster=$((ncluster + 4)); fi
ntls=0 # the tls suite's, after those: 4 TLS redis, stunnel, 2 pools a proxy
if wants tls; then ntls=$((5 + 4)); [ -z "$base_bin" ] || ntls=$((ntls + 4)); fi
nports=$((nports + ncluster + ntls))
read -r -a ports <<<"$(python3 - "$nports" <<'PY'
import random, socket, sys
want, got, socks = int(sys.argv[1]), [], []
for port in random.sample(range(20000, 32000), 2000):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    socks.append(s)
    got.append(port)
    if len(got) == want:
        break
print(" ".join(map(str, got)))
PY
)"
[ "${#ports[@]}" -eq "$nports" ] || { echo "bench/proxy.sh: could not find $nports free ports" >&2; exit 1; }
redis_ports=("${ports[@]:0:4}")
mc_ports=("${ports[@]:4:4}")
nc_redis=${ports[8]} nc_mc=${ports[9]} nc_stats=${ports[10]}
cp_redis=${ports[11]} cp_mc=${ports[12]} cp_stats=${ports[13]}
c1_redis=${ports[14]} c1_mc=${ports[15]} c1_stats=${ports[16]}
nc_mix=${ports[17]} cp_mix=${ports[18]} c1_mix=${ports[19]} # mixed_pool: hash_tag "{}"
if [ -n "$base_bin" ]; then
    b_redis=${ports[20]} b_mc=${ports[21]} b_stats=${ports[22]}
    b1_redis=${ports[23]} b1_mc=${ports[24]} b1_stats=${ports[25]}
    b_mix=${ports[26]} b1_mix=${ports[27]}
fi
declare -A cl_port_of kp_port_of # the cluster suite: TARGET -> its 'cluster' and 'ketama' pool ports
if wants cluster; then
    _o=$((nports - ncluster - ntls))
    cl_ports=("${ports[@]:_o:3}") cl_bus=("${ports[@]:_o+3:3}") kp_ports=("${ports[@]:_o+6:3}")
    cl_port_of[chash-proxy]=${ports[_o+9]} kp_port_of[chash-proxy]=${ports[_o+10]}
    cl_port_of[chash-proxy-w1]=${ports[_o+11]} kp_port_of[chash-proxy-w1]=${ports[_o+12]}
    if [ -n "$base_bin" ]; then
        cl_port_of[base]=${ports[_o+13]} kp_port_of[base]=${ports[_o+14]}
        cl_port_of[base-w1]=${ports[_o+15]} kp_port_of[base-w1]=${ports[_o+16]}
    fi
fi
declare -A tls_port_of tlsb_port_of # the tls suite: TARGET -> its tls_pool and tls_both_pool ports
if wants tls; then
    _o=$((nports - ntls))
    tls_redis_ports=("${ports[@]:_o:4}") st_redis=${ports[_o+4]}
    tls_port_of[chash-proxy]=${ports[_o+5]} tlsb_port_of[chash-proxy]=${ports[_o+6]}
    tls_port_of[chash-proxy-w1]=${ports[_o+7]} tlsb_port_of[chash-proxy-w1]=${ports[_o+8]}
    if [ -n "$base_bin" ]; then
        tls_port_of[base]=${ports[_o+9]} tlsb_port_of[base]=${ports[_o+10]}
        tls_port_of[base-w1]=${ports[_o+11]} tlsb_port_of[base-w1]=${ports[_o+12]}
    fi
fi

mc_user=()
[ "$(id -u)" = 0 ] && mc_user=(-u nobody)
for i in 0 1 2 3; do
    start "redis$i" redis-server --bind 127.0.0.1 --port "${redis_ports[$i]}" --save '' \
        --appendonly no --protected-mode yes --dir "$work"
    # One worker thread each: four of them already outnumber the cores.
    start "memcached$i" memcached "${mc_user[@]}" -l 127.0.0.1 -p "${mc_ports[$i]}" -U 0 -t 1 -c 4096
done
redis_pids=("${pid_of[redis0]}" "${pid_of[redis1]}" "${pid_of[redis2]}" "${pid_of[redis3]}")
mc_pids=("${pid_of[memcached0]}" "${pid_of[memcached1]}" "${pid_of[memcached2]}" "${pid_of[memcached3]}")
for i in 0 1 2 3; do
    wait_port "${redis_ports[$i]}" "redis$i"
    wait_port "${mc_ports[$i]}" "memcached$i"
done

# The cluster suite: a Redis Cluster of 3 nodes, all primaries, and 3 plain
# redis-server for the ketama pool it is compared with; the cluster is up
# (every node says cluster_state:ok) before a proxy asks it for its map.
if wants cluster; then
    for i in 0 1 2; do
        start "clnode$i" redis-server --bind 127.0.0.1 --port "${cl_ports[$i]}" --save '' \
            --appendonly no --protected-mode yes --dir "$work" --cluster-enabled yes \
            --cluster-config-file "$work/nodes-$i.conf" --cluster-port "${cl_bus[$i]}"
        start "plain$i" redis-server --bind 127.0.0.1 --port "${kp_ports[$i]}" --save '' \
            --appendonly no --protected-mode yes --dir "$work"
    done
    cl_pids=("${pid_of[clnode0]}" "${pid_of[clnode1]}" "${pid_of[clnode2]}")
    kp_pids=("${pid_of[plain0]}" "${pid_of[plain1]}" "${pid_of[plain2]}")
    for i in 0 1 2; do
        wait_port "${cl_ports[$i]}" "clnode$i"
        wait_port "${kp_ports[$i]}" "plain$i"
    done
    redis-cli --cluster create "127.0.0.1:${cl_ports[0]}" "127.0.0.1:${cl_ports[1]}" \
        "127.0.0.1:${cl_ports[2]}" --cluster-replicas 0 --cluster-yes >"$work/cluster-create.log" 2>&1 ||
        { echo "bench/proxy.sh: redis-cli --cluster create failed:" >&2; cat "$work/cluster-create.log" >&2; exit 1; }
    for _ in $(seq 300); do
        n_ok=0
        for p in "${cl_ports[@]}"; do
            info=$(redis-cli -h 127.0.0.1 -p "$p" CLUSTER INFO 2>/dev/null || true)
            case $info in *cluster_state:ok*) n_ok=$((n_ok + 1)) ;; esac
        done
        [ "$n_ok" = 3 ] && break
        sleep 0.1
    done
    [ "$n_ok" = 3 ] || { echo "bench/proxy.sh: the Redis Cluster is not ok after 30 s:" >&2
        for p in "${cl_ports[@]}"; do redis-cli -h 127.0.0.1 -p "$p" CLUSTER INFO | head -2 >&2 || true; done
        exit 1; }
fi

# The tls suite: a CA (ECDSA P-256) and a server certificate it signs, for
# localhost and 127.0.0.1, made here with the openssl CLI; every TLS target
# presents it, every TLS client checks it against the CA. Then 4 redis-server
# on their TLS port alone, for tls_both_pool (no client certificate asked:
# the proxy's pools have none).
if wants tls; then
    cat >"$work/cert.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = bench-proxy CA
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    {
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key" &&
            openssl req -x509 -new -key "$work/ca.key" -config "$work/cert.cnf" -extensions ca \
                -days 2 -sha256 -out "$work/ca.crt" &&
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/server.key" &&
            openssl req -new -key "$work/server.key" -subj /CN=localhost -out "$work/server.csr" &&
            openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -set_serial 2 \
                -days 2 -sha256 -extfile "$work/cert.cnf" -extensions server -out "$work/server.crt" &&
            openssl verify -CAfile "$work/ca.crt" "$work/server.crt"
    } >"$work/certs.log" 2>&1 ||
        { echo "bench/proxy.sh: making the certificates failed:" >&2; cat "$work/certs.log" >&2; exit 1; }
    for i in 0 1 2 3; do
        start "tlsredis$i" redis-server --bind 127.0.0.1 --port 0 --tls-port "${tls_redis_ports[$i]}" \
            --tls-cert-file "$work/server.crt" --tls-key-file "$work/server.key" \
            --tls-ca-cert-file "$work/ca.crt" --tls-auth-clients no \
            --save '' --appendonly no --protected-mode yes --dir "$work"
    done
    tls_redis_pids=("${pid_of[tlsredis0]}" "${pid_of[tlsredis1]}" "${pid_of[tlsredis2]}" "${pid_of[tlsredis3]}")
    for i in 0 1 2 3; do wait_port "${tls_redis_ports[$i]}" "tlsredis$i"; done
fi

# One configuration for both proxies but for the listen ports: nutcracker's
# format, which chash-proxy reads as is. mixed_pool is the redis pool again
# with hash_tag "{}", so a transaction's {tag} keys share a server; the
# plain suites keep the pool without it, as they always ran.
write_conf() { # write_conf FILE REDIS_PORT MC_PORT MIXED_PORT
    {
        echo "redis_pool:"
        echo "  listen: 127.0.0.1:$2"
        echo "  redis: true"
        echo "  hash: fnv1a_64"
        echo "  distribution: ketama"
        echo "  servers:"
        for i in 0 1 2 3; do echo "   - 127.0.0.1:${redis_ports[$i]}:1 redis$i"; done
        echo "memcached_pool:"
        echo "  listen: 127.0.0.1:$3"
        echo "  hash: fnv1a_64"
        echo "  distribution: ketama"
        echo "  servers:"
        for i in 0 1 2 3; do echo "   - 127.0.0.1:${mc_ports[$i]}:1 mc$i"; done
        echo "mixed_pool:"
        echo "  listen: 127.0.0.1:$4"
        echo "  redis: true"
        echo "  hash: fnv1a_64"
        echo "  hash_tag: \"{}\""
        echo "  distribution: ketama"
        echo "  servers:"
        for i in 0 1 2 3; do echo "   - 127.0.0.1:${redis_ports[$i]}:1 redis$i"; done
    } >"$1"
}
write_conf "$work/nutcracker.yml" "$nc_redis" "$nc_mc" "$nc_mix"
write_conf "$work/chash.yml" "$cp_redis" "$cp_mc" "$cp_mix"
write_conf "$work/chash1.yml" "$c1_redis" "$c1_mc" "$c1_mix"
if [ -n "$base_bin" ]; then
    write_conf "$work/base.yml" "$b_redis" "$b_mc" "$b_mix"
    write_conf "$work/base1.yml" "$b1_redis" "$b1_mc" "$b1_mix"
fi
# The cluster suite's two pools, in chash-proxy's configurations only
# (nutcracker has no redis-cluster): 'cluster' in front of the Redis Cluster,
# its nodes as seeds, and 'ketama' on the 3 plain servers. A --baseline whose
# configuration check refuses the cluster pool gets the ketama pool alone.
write_cluster_pools() { # write_cluster_pools FILE TARGET [ketama-only]: appended to FILE
    local p
    {
        if [ "${3:-}" != ketama-only ]; then
            echo "cluster:"
            echo "  listen: 127.0.0.1:${cl_port_of[$2]}"
            echo "  redis: true"
            echo "  distribution: redis-cluster"
            echo "  servers:"
            for p in "${cl_ports[@]}"; do echo "   - 127.0.0.1:$p:1"; done
        fi
        echo "ketama:"
        echo "  listen: 127.0.0.1:${kp_port_of[$2]}"
        echo "  redis: true"
        echo "  hash: fnv1a_64"
        echo "  distribution: ketama"
        echo "  servers:"
        for p in 0 1 2; do echo "   - 127.0.0.1:${kp_ports[$p]}:1 plain$p"; done
    } >>"$1"
}
# add_pools WRITER WHAT: WRITER's pools appended to every chash-proxy's
# configuration; false (said so) when a --baseline's -t refuses them, and
# then the baseline gets none.
add_pools() {
    "$1" "$work/chash.yml" chash-proxy
    "$1" "$work/chash1.yml" chash-proxy-w1
    [ -n "$base_bin" ] || return 0
    : >"$work/probe.yml"
    "$1" "$work/probe.yml" base
    if "$base_bin" -t -c "$work/probe.yml" >"$work/probe.err" 2>&1; then
        "$1" "$work/base.yml" base
        "$1" "$work/base1.yml" base-w1
        return 0
    fi
    echo "bench/proxy.sh: base does not take $2, left out of them:" \
        "$(grep -m1 . "$work/probe.err" || echo "its -t failed")" >&2
    return 1
}
cluster_skipped= # the targets left out of the cluster pool
if wants cluster && ! add_pools write_cluster_pools "a redis-cluster pool (the ketama pool alone)"; then
    cluster_skipped="base base-w1"
    write_cluster_pools "$work/base.yml" base ketama-only
    write_cluster_pools "$work/base1.yml" base-w1 ketama-only
fi
# The tls suite's two pools, in chash-proxy's configurations only: tls_pool,
# redis_pool behind a TLS listener, and tls_both_pool, TLS to the TLS
# redis-servers too, which must show the certificate for 'localhost'. The
# same server names as redis_pool (ketama places keys by name), so every key
# goes to the same server, or its TLS twin, as in redis_pool and nutcracker.
write_tls_pools() { # write_tls_pools FILE TARGET: appended to FILE
    local i
    {
        echo "tls_pool:"
        echo "  listen: 127.0.0.1:${tls_port_of[$2]}"
        echo "  redis: true"
        echo "  hash: fnv1a_64"
        echo "  distribution: ketama"
        echo "  tls_cert_file: $work/server.crt"
        echo "  tls_key_file: $work/server.key"
        echo "  servers:"
        for i in 0 1 2 3; do echo "   - 127.0.0.1:${redis_ports[$i]}:1 redis$i"; done
        echo "tls_both_pool:"
        echo "  listen: 127.0.0.1:${tlsb_port_of[$2]}"
        echo "  redis: true"
        echo "  hash: fnv1a_64"
        echo "  distribution: ketama"
        echo "  tls_cert_file: $work/server.crt"
        echo "  tls_key_file: $work/server.key"
        echo "  server_tls: true"
        echo "  server_tls_ca_cert_file: $work/ca.crt"
        echo "  server_tls_name: localhost"
        echo "  servers:"
        for i in 0 1 2 3; do echo "   - 127.0.0.1:${tls_redis_ports[$i]}:1 redis$i"; done
    } >>"$1"
}
tls_skipped= # the targets left out of the tls suite
if wants tls; then
    add_pools write_tls_pools "the tls_* keys (the tls suite)" || tls_skipped="base base-w1"
    # stunnel in front of nutcracker's redis_pool, as a twemproxy user runs
    # it: in the foreground (its PID is ours to stop), logging warnings only.
    if [ -n "$stunnel_bin" ]; then
        cat >"$work/stunnel.conf" <<EOF
foreground = yes
pid =
debug = 4
[redis]
accept = 127.0.0.1:$st_redis
connect = 127.0.0.1:$nc_redis
cert = $work/server.crt
key = $work/server.key
EOF
    fi
fi
start nutcracker nutcracker -c "$work/nutcracker.yml" -s "$nc_stats" -a 127.0.0.1 \
    -p "$work/nutcracker.pid" -o "$work/nutcracker.out"
start chash-proxy "$proxy_bin" -c "$work/chash.yml" -s "$cp_stats" -a 127.0.0.1 --workers "$(nproc)" \
    ${proxy_args[@]+"${proxy_args[@]}"}
start chash-proxy-w1 "$proxy_bin" -c "$work/chash1.yml" -s "$c1_stats" -a 127.0.0.1 --workers 1 \
    ${proxy_args[@]+"${proxy_args[@]}"}
wait_port "$nc_redis" nutcracker
wait_port "$cp_redis" chash-proxy
wait_port "$c1_redis" chash-proxy-w1
if [ -n "$base_bin" ]; then
    start base "$base_bin" -c "$work/base.yml" -s "$b_stats" -a 127.0.0.1 --workers "$(nproc)" \
        ${base_args[@]+"${base_args[@]}"}
    start base-w1 "$base_bin" -c "$work/base1.yml" -s "$b1_stats" -a 127.0.0.1 --workers 1 \
        ${base_args[@]+"${base_args[@]}"}
    wait_port "$b_redis" base
    wait_port "$b1_redis" base-w1
fi
if [ -n "$stunnel_bin" ]; then
    start stunnel "$stunnel_bin" "$work/stunnel.conf"
    stat_cpu_pids=${pid_of[stunnel]}
    wait_port "$st_redis" stunnel
fi

"${CC:-cc}" -O2 -std=c11 -o "$work/mcload" "$here/proxy/mcload.c"
"${CC:-cc}" -O2 -std=c11 -o "$work/mixload" "$here/proxy/mixload.c"

# Every MGET key (redis-benchmark's key:%012d for -r 100000) on every
# redis: the direct one then holds all of them, and each proxy finds its
# keys wherever it routes.
python3 - "$work/keys.resp" <<'PY'
import sys
value = b"v" * 16
with open(sys.argv[1], "wb") as f:
    for k in range(100000):
        key = b"key:%012d" % k
        f.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
PY
for p in "${redis_ports[@]}"; do redis-cli -h 127.0.0.1 -p "$p" --pipe <"$work/keys.resp" >/dev/null; done
tls_cli=(--tls --cacert "$work/ca.crt") # redis-cli's and redis-benchmark's, on a TLS target
if wants tls; then
    for p in "${tls_redis_ports[@]}"; do
        redis-cli -h 127.0.0.1 -p "$p" "${tls_cli[@]}" --pipe <"$work/keys.resp" >/dev/null
    done
fi

targets_redis=("direct:${redis_ports[0]}" "nutcracker:$nc_redis" "chash-proxy:$cp_redis" "chash-proxy-w1:$c1_redis")
targets_mc=("direct:${mc_ports[0]}" "nutcracker:$nc_mc" "chash-proxy:$cp_mc" "chash-proxy-w1:$c1_mc")
if [ -n "$base_bin" ]; then
    # Each baseline right after its counterpart, so the two run back to back
    # in every round but the one whose rotation starts at the baseline.
    targets_redis=("direct:${redis_ports[0]}" "nutcracker:$nc_redis" "chash-proxy:$cp_redis" "base:$b_redis"
        "chash-proxy-w1:$c1_redis" "base-w1:$b1_redis")
    targets_mc=("direct:${mc_ports[0]}" "nutcracker:$nc_mc" "chash-proxy:$cp_mc" "base:$b_mc"
        "chash-proxy-w1:$c1_mc" "base-w1:$b1_mc")
fi
# The mixed suite: direct (one redis holds every key and channel) and
# chash-proxy through mixed_pool. nutcracker refuses MULTI and SUBSCRIBE.
targets_mixed=("direct:${redis_ports[0]}" "chash-proxy:$cp_mix" "chash-proxy-w1:$c1_mix")
[ -z "$base_bin" ] || targets_mixed=("direct:${redis_ports[0]}" "chash-proxy:$cp_mix" "base:$b_mix"
    "chash-proxy-w1:$c1_mix" "base-w1:$b1_mix")
# The cluster suite: each chash-proxy, both pools (cluster_port_of, kp_port_of).
targets_cluster=(chash-proxy chash-proxy-w1)
[ -z "$base_bin" ] || targets_cluster=(chash-proxy base chash-proxy-w1 base-w1)
declare -A stats_port_of=([chash-proxy]=$cp_stats [chash-proxy-w1]=$c1_stats)
[ -z "$base_bin" ] || stats_port_of+=([base]=$b_stats [base-w1]=$b1_stats)
in_cluster_pool() { case " $cluster_skipped " in *" $1 "*) return 1 ;; esac; }
# The tls suite: TARGET:TLS:PORT, TLS saying which legs are TLS: none, clients
# (the client's connection to the target) or both (the proxy's to the
# servers too). Each proxy's three pools side by side (with --baseline, each
# next to base's), so its ratios see the same minutes of the machine.
targets_tls=("direct:none:${redis_ports[0]}")
if wants tls; then
    targets_tls+=("direct:clients:${tls_redis_ports[0]}" "nutcracker:none:$nc_redis")
    [ -z "$stunnel_bin" ] || targets_tls+=("stunnel+nutcracker:clients:$st_redis")
    declare -A plain_port_of=([chash-proxy]=$cp_redis [chash-proxy-w1]=$c1_redis)
    [ -z "$base_bin" ] || plain_port_of+=([base]=$b_redis [base-w1]=$b1_redis)
    _pairs=("chash-proxy" "chash-proxy-w1")
    [ -z "$base_bin" ] || [ -n "$tls_skipped" ] || _pairs=("chash-proxy base" "chash-proxy-w1 base-w1")
    for _pair in "${_pairs[@]}"; do
        for _m in none clients both; do
            for t in $_pair; do
                case $_m in
                none) targets_tls+=("$t:none:${plain_port_of[$t]}") ;;
                clients) targets_tls+=("$t:clients:${tls_port_of[$t]}") ;;
                both) targets_tls+=("$t:both:${tlsb_port_of[$t]}") ;;
                esac
            done
        done
    done
fi
mix_weights=get=60,set=25,txn=10,pub=5
plain_weights=get=60,set=25 # the control: the same GET and SET, nothing else
workers_of() { case $1 in chash-proxy | base) nproc ;; chash-proxy-w1 | base-w1 | nutcracker | stunnel+nutcracker | direct) echo 1 ;; esac; }
# "binary" in a row says which chash-proxy ran it, once there are two.
json_str() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
# What ran as chash-proxy and as base: the binary and its extra options.
proxy_desc="$proxy_bin${proxy_args[*]:+ ${proxy_args[*]}}"
base_desc="$base_bin${base_args[*]:+ ${base_args[*]}}"
if [ -n "$base_bin" ]; then proxy_json=$(json_str "$proxy_desc") base_json=$(json_str "$base_desc"); fi
binary_field() { # binary_field TARGET: ,"binary":PATH for a chash-proxy with --baseline; else nothing
    [ -n "$base_bin" ] || return 0
    case $1 in
    chash-proxy | chash-proxy-w1) echo ",\"binary\":$proxy_json" ;;
    base | base-w1) echo ",\"binary\":$base_json" ;;
    esac
}

# A sanity check, so a broken target fails loudly instead of looking fast.
for t in "${targets_redis[@]}"; do
    got=$(redis-cli -h 127.0.0.1 -p "${t#*:}" MGET key:000000000001 key:000000099999 | tr '\n' ' ')
    [ "$got" = "vvvvvvvvvvvvvvvv vvvvvvvvvvvvvvvv " ] ||
        { echo "bench/proxy.sh: ${t%%:*}: MGET gave '$got'" >&2; exit 1; }
done

# The cluster suite: both pools filled through chash-proxy with the same
# keys (so GETs find them from the first round), which must go in with no
# error; then every proxy must read two of them back from each pool (an
# MGET split by slot on the cluster pool). A baseline that fails it on the
# cluster pool is left out of it; any other failure stops, with the log.
if wants cluster; then
    for pool in cluster ketama; do
        if [ "$pool" = cluster ]; then p=${cl_port_of[chash-proxy]}; else p=${kp_port_of[chash-proxy]}; fi
        got=$(redis-cli -h 127.0.0.1 -p "$p" --pipe <"$work/keys.resp" 2>&1 | tail -1 || true)
        [ "$got" = "errors: 0, replies: 100000" ] || {
            echo "bench/proxy.sh: chash-proxy: filling the $pool pool: '$got'; its log:" >&2
            tail -20 "$work/chash-proxy.log" >&2; keep_work=1; exit 1; }
    done
    for t in "${targets_cluster[@]}"; do
        for pool in cluster ketama; do
            if [ "$pool" = cluster ]; then in_cluster_pool "$t" || continue; p=${cl_port_of[$t]}; else p=${kp_port_of[$t]}; fi
            got=$(redis-cli -h 127.0.0.1 -p "$p" MGET key:000000000001 key:000000099999 2>&1 | tr '\n' ' ')
            [ "$got" = "vvvvvvvvvvvvvvvv vvvvvvvvvvvvvvvv " ] && continue
            if [ "$pool" = cluster ] && { [ "$t" = base ] || [ "$t" = base-w1 ]; }; then
                echo "bench/proxy.sh: $t cannot serve the cluster pool, left out of it: MGET gave '$got'" >&2
                cluster_skipped+=" $t"
            else
                echo "bench/proxy.sh: $t: MGET on the $pool pool gave '$got'; its log:" >&2
                tail -20 "$work/$t.log" >&2; keep_work=1; exit 1
            fi
        done
    done
fi

# The tls suite: every target reads two keys back, over TLS where it takes
# TLS, and every TLS target's handshake is checked once with openssl
# s_client against the CA and for 127.0.0.1: the version and suite it
# negotiates are printed, since they set the cost of what follows. A
# --baseline that fails it is left out of the suite; any other failure stops.
declare -A tls_session_of # TARGET:TLS -> "TLSv1.3 TLS_AES_256_GCM_SHA384"
if wants tls; then
    kept=()
    for t in "${targets_tls[@]}"; do
        IFS=: read -r name mode p <<<"$t"
        args=()
        [ "$mode" = none ] || args=("${tls_cli[@]}")
        got=$(redis-cli -h 127.0.0.1 -p "$p" "${args[@]}" MGET key:000000000001 key:000000099999 2>&1 | tr '\n' ' ')
        if [ "$got" != "vvvvvvvvvvvvvvvv vvvvvvvvvvvvvvvv " ]; then
            if [ "$name" = base ] || [ "$name" = base-w1 ]; then
                echo "bench/proxy.sh: $name cannot serve the tls suite ($mode), left out of it: MGET gave '$got'" >&2
                tls_skipped+=" $name"
                continue
            fi
            echo "bench/proxy.sh: $name (tls $mode): MGET gave '$got'; its log:" >&2
            tail -20 "$work/${name%%+*}.log" >&2 || true; keep_work=1; exit 1
        fi
        kept+=("$t")
        [ "$mode" = none ] && continue
        got=$(openssl s_client -connect "127.0.0.1:$p" -CAfile "$work/ca.crt" -verify_return_error \
            -verify_ip 127.0.0.1 -brief </dev/null 2>&1 || true)
        case $got in
        *"Verification: OK"*)
            tls_session_of[$name:$mode]="$(sed -n 's/^Protocol version: //p' <<<"$got") $(sed -n 's/^Ciphersuite: //p' <<<"$got")" ;;
        *) echo "bench/proxy.sh: $name (tls $mode): openssl s_client did not verify:" >&2
            echo "$got" | head -5 >&2; keep_work=1; exit 1 ;;
        esac
    done
    # A baseline left out of one is left out of all its rows.
    targets_tls=()
    for t in "${kept[@]}"; do
        case " $tls_skipped " in *" ${t%%:*} "*) ;; *) targets_tls+=("$t") ;; esac
    done
fi

# The mixed suite needs transactions and subscriptions: a short run of it on
# each target first. A baseline that cannot serve it (a build from before
# they came) is left out of that suite, said so; any other failure stops.
mixed_skipped=
mixed_plain_targets=("${targets_mixed[@]}")
if wants mixed; then
    kept=()
    for t in "${targets_mixed[@]}"; do
        if "$work/mixload" -h 127.0.0.1 -p "${t#*:}" -n 400 -c 4 -r 1000 -m "$mix_weights" \
            >/dev/null 2>"$work/probe.err"; then
            kept+=("$t")
        elif [ "${t%%:*}" = base ] || [ "${t%%:*}" = base-w1 ]; then
            echo "bench/proxy.sh: ${t%%:*} cannot serve the mixed workload, left out of it:" \
                "$(head -1 "$work/probe.err")" >&2
            mixed_skipped+=" ${t%%:*}"
        else
            echo "bench/proxy.sh: ${t%%:*}: the mixed workload failed:" >&2
            cat "$work/probe.err" >&2
            exit 1
        fi
    done
    targets_mixed=("${kept[@]}")
fi

mkdir -p "$(dirname "$out")"
: >"$out"
row() { # row TARGET JSON-FIELDS: one measurement to the output file
    echo "{\"bench\":\"proxy\",\"round\":$round,$2$(binary_field "$1")}" >>"$out"
}
failed() { # failed SUITE TARGET WHAT: a run that did not finish is a row too
    echo "  $2: $3 FAILED (see below)" >&2
    tail -5 "$work/run.err" >&2 || true
    row "$2" "\"suite\":\"$1\",\"target\":\"$2\",\"test\":\"$3\",\"error\":true"
}
# CPU per request, from /proc/PID/task/*/schedstat around each run: the
# process the client talks to (a proxy; none for direct) and the servers
# behind it. On a machine whose few cores the load generator, the proxy and
# the servers share, every microsecond a proxy spends is taken from the
# others, so this is the number that carries to other machines. The load
# generator's CPU is the shell's reaped children's (bash `times`) between
# cpu_begin and cpu_end: the load generator alone, so nothing else may be
# run (no $(...)) between the two marks.
# A target of two processes (stunnel+nutcracker) counts both as the proxy,
# and each as a part of it (stunnel_cpu_us_per_req, nutcracker_...).
cpu_begin() { # cpu_begin SUITE TARGET; SUITE cluster-cluster or cluster-ketama: the cluster suite's pool, tls-servers: the TLS redis
    local servers=("${redis_pids[@]}") part
    case $1 in
    memcached) servers=("${mc_pids[@]}") ;;
    cluster-cluster) servers=("${cl_pids[@]}") ;;
    cluster-ketama) servers=("${kp_pids[@]}") ;;
    tls-servers) servers=("${tls_redis_pids[@]}") ;;
    esac
    [ "$2" = direct ] && servers=("${servers[0]}")
    cpu_parts=()
    case $2 in stunnel+nutcracker) cpu_parts=(stunnel nutcracker) ;; esac
    cpu_target_pid=${pid_of[$2]:-} # a comma-separated list for perf -p
    if [ "${#cpu_parts[@]}" -gt 0 ]; then
        cpu_target_pid=
        for part in "${cpu_parts[@]}"; do cpu_target_pid+=${cpu_target_pid:+,}${pid_of[$part]}; done
    fi
    cpu_server_pids=("${servers[@]}")
    if [ "$count_syscalls" = 1 ]; then syscalls_begin; fi
    cpu_parts0=()
    for part in "${cpu_parts[@]}"; do cpu_parts0+=("$(cpu_ns "${pid_of[$part]}")"); done
    cpu_target0=$(cpu_ns ${cpu_target_pid//,/ })
    cpu_servers0=$(cpu_ns "${cpu_server_pids[@]}")
    times >"$work/times0"
}
cpu_end() { # cpu_end: right after the load generator, finished or failed
    local part
    times >"$work/times1"
    cpu_target1=$(cpu_ns ${cpu_target_pid//,/ })
    cpu_servers1=$(cpu_ns "${cpu_server_pids[@]}")
    cpu_parts1=()
    for part in "${cpu_parts[@]}"; do cpu_parts1+=("$(cpu_ns "${pid_of[$part]}")"); done
    if [ "$count_syscalls" = 1 ]; then syscalls_end; fi
}
cpu_fields() { # cpu_fields REQUESTS: JSON fields for the run between cpu_begin and cpu_end
    # times' second line: the children's user and system time, "0m1.234s 0m0.567s".
    local g
    g=$(awk 'FNR == 2 { gsub(",", "."); split($1, u, /[ms]/); split($2, k, /[ms]/)
                       v = (u[1] * 60 + u[2] + k[1] * 60 + k[2]) * 1e6
                       if (FILENAME ~ /times1$/) v1 = v; else v0 = v }
             END { printf "%.0f", v1 - v0 }' "$work/times0" "$work/times1")
    local parts="" i
    for ((i = 0; i < ${#cpu_parts[@]}; i++)); do
        parts+=" ${cpu_parts[i]}=$((cpu_parts1[i] - cpu_parts0[i]))"
    done
    awk -v t="$((cpu_target1 - cpu_target0))" -v s="$((cpu_servers1 - cpu_servers0))" -v g="$g" \
        -v n="$1" -v has="${cpu_target_pid:+1}" -v sys="$count_syscalls" -v parts="$parts" \
        -v st="${sys_target:-}" -v ss="${sys_servers:-}" 'BEGIN {
        printf "\"proxy_cpu_us_per_req\":%s,\"servers_cpu_us_per_req\":%.3f,\"loadgen_cpu_us_per_req\":%.3f",
            has ? sprintf("%.3f", t / 1000 / n) : "null", s / 1000 / n, g / n
        np = split(parts, pa, " ")
        for (i = 1; i <= np; i++) {
            split(pa[i], kv, "=")
            printf ",\"%s_cpu_us_per_req\":%.3f", kv[1], kv[2] / 1000 / n
        }
        if (sys)
            printf ",\"proxy_syscalls_per_req\":%s,\"servers_syscalls_per_req\":%s",
                has && st != "" ? sprintf("%.3f", st / n) : "null",
                ss != "" ? sprintf("%.3f", ss / n) : "null" }'
}
# --syscalls: one perf stat on the proxy and one on the servers, attached
# before cpu_begin's marks and stopped after cpu_end's.
perf_attached() { # perf_attached PID: perf has opened its counters
    local fd
    for fd in /proc/"$1"/fd/*; do
        case $(readlink "$fd" 2>/dev/null) in *perf_event*) return 0 ;; esac
    done
    return 1
}
syscalls_begin() {
    local p _
    rm -f "$work/perf_target.txt" "$work/perf_servers.txt"
    perf_pids=()
    if [ -n "$cpu_target_pid" ]; then
        perf stat -e raw_syscalls:sys_enter -x, -o "$work/perf_target.txt" -p "$cpu_target_pid" \
            2>>"$work/perf.err" &
        perf_pids+=("$!")
    fi
    perf stat -e raw_syscalls:sys_enter -x, -o "$work/perf_servers.txt" \
        -p "$(IFS=,; echo "${cpu_server_pids[*]}")" 2>>"$work/perf.err" &
    perf_pids+=("$!")
    for p in "${perf_pids[@]}"; do
        for _ in $(seq 100); do perf_attached "$p" && break; sleep 0.02; done
    done
    sleep 0.1 # opened, then enabled
}
syscalls_end() {
    local p
    for p in "${perf_pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${perf_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    perf_pids=()
    sys_target=$(awk -F, '$3 ~ /raw_syscalls:sys_enter/ && $1 ~ /^[0-9]+$/ {print $1}' \
        "$work/perf_target.txt" 2>/dev/null || true)
    sys_servers=$(awk -F, '$3 ~ /raw_syscalls:sys_enter/ && $1 ~ /^[0-9]+$/ {print $1}' \
        "$work/perf_servers.txt" 2>/dev/null || true)
}
rotate() { # rotate N ITEMS...: the items, starting at the N-th (mod count)
    local n=$1; shift
    local items=("$@") i
    for ((i = 0; i < ${#items[@]}; i++)); do echo "${items[$(((i + n) % ${#items[@]}))]}"; done
}

# redis-benchmark --csv: "test","rps","avg_latency_ms","min_latency_ms",
# "p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
csv_rows() { # csv_rows SUITE TARGET PIPELINE CLIENTS KEYS < csv
    python3 -c '
import csv, json, sys
suite, target, pipeline, clients, keys, workers = sys.argv[1:7]
for r in csv.DictReader(sys.stdin):
    test = r["test"].split()[0]
    print(json.dumps(dict(suite=suite, target=target, workers=int(workers), test=test,
        pipeline=int(pipeline), clients=int(clients), keys=int(keys),
        ops_per_sec=float(r["rps"]), avg_ms=float(r["avg_latency_ms"]),
        p50_ms=float(r["p50_latency_ms"]), p99_ms=float(r["p99_latency_ms"]),
        max_ms=float(r["max_latency_ms"]))).removeprefix("{").removesuffix("}"))
' "$@" "$(workers_of "$2")"
}

# redis_benchmark CPU_SUITE SUITE TARGET PORT PIPELINE [FIELDS [ARGS...]]: one
# redis-benchmark set,get run and its rows (FIELDS added to each; ARGS to
# redis-benchmark's), the CPU of CPU_SUITE's servers; false when it did not finish.
# CLIENTS and N (the environment) change the 50 clients and --requests.
redis_benchmark() {
    local ok=0 cpu extra=${6:+,$6} clients=${CLIENTS:-50} n=${N:-$requests}
    cpu_begin "$1" "$3"
    timeout 300 redis-benchmark -h 127.0.0.1 -p "$4" -t set,get -n "$n" -c "$clients" \
        -r 100000 -P "$5" "${@:7}" --csv >"$work/run.csv" 2>"$work/run.err" && ok=1
    cpu_end
    [ "$ok" = 1 ] || return 1
    # One run does SET then GET: the CPU is shared out over both.
    cpu=$(cpu_fields $((n * 2)))
    csv_rows "$2" "$3" "$5" "$clients" 1 <"$work/run.csv" | while read -r r; do row "$3" "$r$extra,$cpu"; done
}
bench_redis() { # bench_redis TARGET PORT PIPELINE [CLIENTS]
    CLIENTS=${4:-50} N=$((${4:-50} < 50 ? requests / 4 : requests)) \
        redis_benchmark redis redis "$1" "$2" "$3" || failed redis "$1" "set,get -P $3 -c ${4:-50}"
}
bench_cluster() { # bench_cluster TARGET POOL PIPELINE: the redis runs on one pool of the cluster suite
    local port=${kp_port_of[$1]}
    [ "$2" = ketama ] || port=${cl_port_of[$1]}
    if ! redis_benchmark "cluster-$2" cluster "$1" "$port" "$3" "\"pool\":\"$2\""; then
        # redis-benchmark stops at the first error reply, which it prints
        # on its standard output.
        failed cluster "$1" "set,get -P $3 $2 pool"
        grep -v '^"' "$work/run.csv" | tail -3 >&2 || true
        echo "  $1's log (last lines):" >&2
        tail -20 "$work/$1.log" >&2 || true
        keep_work=1
    fi
}
bench_tls() { # bench_tls TARGET TLS PORT PIPELINE: the redis runs of the tls suite on one target
    local servers=tls args=()
    # Direct over TLS is the TLS redis-server; both sides, the 4 of them.
    if [ "$2" = both ] || { [ "$1" = direct ] && [ "$2" = clients ]; }; then servers=tls-servers; fi
    [ "$2" = none ] || args=("${tls_cli[@]}")
    if ! redis_benchmark "$servers" tls "$1" "$3" "$4" "\"tls\":\"$2\"" "${args[@]}"; then
        failed tls "$1" "set,get -P $4 tls $2"
        grep -v '^"' "$work/run.csv" | tail -3 >&2 || true
    fi
}
bench_mget() { # bench_mget TARGET PORT KEYS CLIENTS
    local n=$(($3 >= 1000 ? 400 : 2000)) args=() i ok=0 cpu
    [ "$4" -gt 1 ] && n=$((n * 4))
    for ((i = 0; i < $3; i++)); do args+=("key:__rand_int__"); done
    cpu_begin redis "$1"
    timeout 300 redis-benchmark -h 127.0.0.1 -p "$2" -n "$n" -c "$4" -r 100000 --csv \
        MGET "${args[@]}" >"$work/run.csv" 2>"$work/run.err" && ok=1
    cpu_end
    if [ "$ok" = 1 ]; then
        cpu=$(cpu_fields "$n")
        csv_rows mget "$1" 1 "$4" "$3" <"$work/run.csv" | while read -r r; do row "$1" "$r,$cpu"; done
    else
        failed mget "$1" "MGET $3 keys, $4 clients"
    fi
}
bench_mcload() { # bench_mcload TARGET PORT PIPELINE
    local ok=0 cpu
    cpu_begin memcached "$1"
    timeout 300 "$work/mcload" -h 127.0.0.1 -p "$2" -t set,get -n "$requests" -c 50 \
        -r 100000 -P "$3" >"$work/run.json" 2>"$work/run.err" && ok=1
    cpu_end
    if [ "$ok" = 1 ]; then
        cpu=$(cpu_fields $((requests * 2)))
        while read -r r; do
            r=${r#\{}
            row "$1" "\"suite\":\"memcached\",\"tool\":\"mcload\",\"target\":\"$1\",\"workers\":$(workers_of "$1"),${r%\}},$cpu"
        done <"$work/run.json"
    else
        failed memcached "$1" "mcload set,get -P $3"
    fi
}
bench_memcaslap() { # bench_memcaslap TARGET PORT: 3 s of 90% get, 10% set
    local ok=0
    cpu_begin memcached "$1"
    timeout 60 "$has_memcaslap" -s "127.0.0.1:$2" -T 1 -c 50 -t 3s -S 3s -X 32 \
        >"$work/run.txt" 2>"$work/run.err" && ok=1
    cpu_end
    if [ "$ok" = 1 ]; then
        # "Run time: 3.0s Ops: 211031 TPS: 70305 Net_rate: 12.0M/s"; the
        # average latency (us) is the Global row under "Total Statistics".
        local tps avg ops
        tps=$(sed -n 's/^Run time: .* TPS: \([0-9]*\).*/\1/p' "$work/run.txt")
        ops=$(sed -n 's/^Run time: .* Ops: \([0-9]*\) .*/\1/p' "$work/run.txt")
        avg=$(awk '/^Total Statistics$/ {t = 1} t && $1 == "Global" {print $9; exit}' "$work/run.txt")
        if [ -n "$tps" ]; then
            row "$1" "\"suite\":\"memcached\",\"tool\":\"memcaslap\",\"target\":\"$1\",\"workers\":$(workers_of "$1"),\"test\":\"GET90/SET10\",\"pipeline\":1,\"clients\":50,\"ops_per_sec\":$tps,\"avg_ms\":$(awk "BEGIN {print ${avg:-0} / 1000}"),$(cpu_fields "${ops:-1}")"
            return
        fi
    fi
    failed memcached "$1" "memcaslap"
}
bench_mixed() { # bench_mixed TARGET PORT TOOL WEIGHTS SUBSCRIBERS: a mixload run
    local ok=0 cpu commands
    cpu_begin redis "$1"
    timeout 300 "$work/mixload" -h 127.0.0.1 -p "$2" -n "$requests" -c 50 -r 100000 \
        -m "$4" -s "$5" -C 8 >"$work/run.json" 2>"$work/run.err" && ok=1
    cpu_end
    if [ "$ok" = 1 ]; then
        # Per command (a transaction is 4) on every row, as set,get shares
        # its CPU over both tests; the ALL row has the command count.
        commands=$(sed -n 's/.*"commands":\([0-9]*\).*/\1/p' "$work/run.json")
        cpu=$(cpu_fields "${commands:-1}")
        while read -r r; do
            r=${r#\{}
            r=${r//\"loadgen_cpu_us_per_req\"/\"loadgen_self_cpu_us_per_req\"}
            row "$1" "\"suite\":\"mixed\",\"tool\":\"$3\",\"target\":\"$1\",\"workers\":$(workers_of "$1"),\"pipeline\":1,\"clients\":50,${r%\}},$cpu"
        done <"$work/run.json"
    else
        failed mixed "$1" "$3 $4"
    fi
}

# What stunnel logged before the rounds (that no CA is set for clients, as
# meant; the end of wait_port's probe connection) is not counted.
st_log0=0
[ -z "$stunnel_bin" ] || st_log0=$(grep -c . "$work/stunnel.log" || true)
echo "== bench/proxy.sh: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg);" \
    "$rounds rounds, target order rotated each round; medians reported" >&2
echo "   $(redis-server --version | cut -d' ' -f1-3), $(memcached -V), $(nutcracker -V 2>&1 | head -1 | sed 's/^This is //')," \
    "chash-proxy $("$proxy_bin" -V | cut -d' ' -f2) ($proxy_desc)" >&2
[ -z "$base_bin" ] || echo "   base: chash-proxy $("$base_bin" -V | cut -d' ' -f2) ($base_desc)" >&2
for ((round = 1; round <= rounds; round++)); do
    echo "== round $round of $rounds" >&2
    if wants redis; then
        while read -r t; do
            for P in 1 16; do
                echo "  redis  ${t%%:*} -P $P" >&2
                bench_redis "${t%%:*}" "${t#*:}" "$P"
            done
            echo "  redis  ${t%%:*} -P 1, 5 clients (light load)" >&2
            bench_redis "${t%%:*}" "${t#*:}" 1 5
        done < <(rotate "$round" "${targets_redis[@]}")
    fi
    if wants memcached; then
        while read -r t; do
            for P in 1 16; do
                echo "  memcached mcload ${t%%:*} -P $P" >&2
                bench_mcload "${t%%:*}" "${t#*:}" "$P"
            done
            if [ -n "$has_memcaslap" ]; then
                echo "  memcached memcaslap ${t%%:*}" >&2
                bench_memcaslap "${t%%:*}" "${t#*:}"
            fi
        done < <(rotate "$round" "${targets_mc[@]}")
    fi
    if wants mget; then
        while read -r t; do
            for keys in 100 1000; do
                for clients in 1 20; do
                    echo "  mget   ${t%%:*} $keys keys, $clients clients" >&2
                    bench_mget "${t%%:*}" "${t#*:}" "$keys" "$clients"
                done
            done
        done < <(rotate "$round" "${targets_redis[@]}")
    fi
    if wants mixed; then
        while read -r t; do
            case " ${targets_mixed[*]} " in
            *" $t "*)
                echo "  mixed  ${t%%:*} $mix_weights, 4 subscribers" >&2
                bench_mixed "${t%%:*}" "${t#*:}" mixload "$mix_weights" 4
                ;;
            esac
            echo "  mixed  ${t%%:*} $plain_weights (control)" >&2
            bench_mixed "${t%%:*}" "${t#*:}" mixload-plain "$plain_weights" 0
        done < <(rotate "$round" "${mixed_plain_targets[@]}")
    fi
    if wants cluster; then
        # A proxy's two pools back to back at each -P, so their ratio within
        # the round sees the same machine; which goes first alternates.
        pools=(cluster ketama)
        [ $((round % 2)) = 1 ] || pools=(ketama cluster)
        while read -r t; do
            for P in 1 16; do
                for pool in "${pools[@]}"; do
                    if [ "$pool" = cluster ] && ! in_cluster_pool "$t"; then continue; fi
                    echo "  cluster $t $pool pool -P $P" >&2
                    bench_cluster "$t" "$pool" "$P"
                done
            done
        done < <(rotate "$round" "${targets_cluster[@]}")
    fi
    if wants tls; then
        while IFS=: read -r t mode p; do
            for P in 1 16; do
                echo "  tls    $t ($mode) -P $P" >&2
                bench_tls "$t" "$mode" "$p" "$P"
            done
        done < <(rotate "$round" "${targets_tls[@]}")
    fi
done

# pool_counters BENCH TARGET PORT POOLS FIELDS SUMS [PER_SERVER]: one JSON row a
# pool of POOLS (comma-separated) from the proxy's stats port: the pool's
# FIELDS, each of SUMS summed over its servers, and PER_SERVER by server.
pool_counters() {
    python3 - "$@" <<'PY'
import json, socket, sys
bench, target, port, pools, fields, sums = sys.argv[1:7]
per_server = sys.argv[7] if len(sys.argv) > 7 else ""
with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as s:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
st = json.loads(data)
for pool in pools.split(","):
    p = st.get(pool)
    if not isinstance(p, dict):
        continue
    servers = {k: v for k, v in p.items() if isinstance(v, dict)}
    row = dict(bench=bench, target=target, pool=pool, **{f: p.get(f) for f in fields.split(",")},
               **{f: sum(v.get(f) or 0 for v in servers.values()) for f in sums.split(",")})
    if per_server:
        row[per_server] = {k: v.get(per_server) for k, v in servers.items()}
    print(json.dumps(row))
PY
}

# The cluster suite: each proxy's counters for both pools at the end (from
# its stats port): errors, redirects followed, requests per shard or server.
if wants cluster; then
    for t in "${targets_cluster[@]}"; do
        pool_counters proxy-cluster-check "$t" "${stats_port_of[$t]}" cluster,ketama \
            client_err,forward_error,cluster_moved,cluster_ask,cluster_retried,cluster_redirect_failed \
            server_err,server_timedout,server_eof requests >>"$out" 2>"$work/stats.err" ||
            echo "bench/proxy.sh: $t: could not read its stats: $(tail -1 "$work/stats.err")" >&2
    done
fi

# The tls suite: each proxy's counters for its pools at the end (stats
# port): TLS handshakes (a redis-benchmark run opens 50 clients a test and
# one more for its CONFIG GET, the checks 2), handshake errors and errors;
# and what stunnel logged during the rounds (warnings and errors alone).
if wants tls; then
    for t in chash-proxy chash-proxy-w1 base base-w1; do
        case " ${targets_tls[*]} " in *" $t:clients:"*) ;; *) continue ;; esac
        pool_counters proxy-tls-check "$t" "${stats_port_of[$t]}" tls_pool,tls_both_pool,redis_pool \
            tls_handshakes,tls_handshake_errors,client_connections,client_err,forward_error \
            server_err,server_timedout,server_eof,requests >>"$out" 2>"$work/stats.err" ||
            echo "bench/proxy.sh: $t: could not read its stats: $(tail -1 "$work/stats.err")" >&2
    done
    if [ -n "$stunnel_bin" ]; then
        python3 -c 'import json, sys; print(json.dumps(dict(bench="proxy-tls-check", target="stunnel",
            log_lines=int(sys.argv[1]), log_tail=sys.argv[2])))' \
            "$(($(grep -c . "$work/stunnel.log" || true) - st_log0))" \
            "$(tail -n +$((st_log0 + 1)) "$work/stunnel.log" | tail -3)" >>"$out"
    fi
    for k in "${!tls_session_of[@]}"; do
        echo "{\"bench\":\"proxy-tls-session\",\"target\":\"${k%%:*}\",\"tls\":\"${k#*:}\",\"session\":\"${tls_session_of[$k]}\"}" >>"$out"
    done
fi

python3 - "$out" "$rounds" "$(nproc)" "${base_bin:+$base_desc}" "$mixed_skipped" "$cluster_skipped" "$tls_skipped" <<'PY'
import json, statistics, sys
path, rounds, cores, base_bin, mixed_skipped = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5].split()
cluster_skipped, tls_skipped = sys.argv[6].split(), sys.argv[7].split()
rows = [json.loads(l) for l in open(path) if l.strip()]
cluster_checks = [r for r in rows if r.get("bench") == "proxy-cluster-check"]
tls_checks = [r for r in rows if r.get("bench") == "proxy-tls-check"]
tls_sessions = [r for r in rows if r.get("bench") == "proxy-tls-session"]
rows = [r for r in rows if r.get("bench") == "proxy"]  # not the summaries of an earlier pass
ok = [r for r in rows if not r.get("error")]
errors = [r for r in rows if r.get("error")]
order = ["direct", "nutcracker", "stunnel+nutcracker", "chash-proxy", "base", "chash-proxy-w1", "base-w1"]
PAIRS = (("chash-proxy", "base"), ("chash-proxy-w1", "base-w1"))  # with --baseline: new, base
FIELDS = ("ops_per_sec", "p50_ms", "p99_ms", "avg_ms", "proxy_cpu_us_per_req", "servers_cpu_us_per_req",
          "loadgen_cpu_us_per_req", "proxy_syscalls_per_req", "servers_syscalls_per_req",
          "stunnel_cpu_us_per_req", "nutcracker_cpu_us_per_req")  # the last two: stunnel+nutcracker's parts
SUITES = ["redis", "memcached", "mget", "mixed", "cluster", "tls"]
has_sys = any(r.get("servers_syscalls_per_req") is not None for r in ok)

def key(r):  # the cluster suite's rows also say which pool ("cluster" or "ketama"), the tls
    # suite's which legs are TLS ("none", "clients", "both"): one slot for either
    return (r["suite"], r.get("tool", "redis-benchmark"), r["test"], r.get("pipeline", 1),
            r.get("clients", 50), r.get("keys", 1), r.get("pool", r.get("tls", "")))

def tool_of(k):  # the tool column: the cluster suite's pool, the tls suite's legs, in place of its tool
    if k[0] == "tls":
        return f"tls {k[6]}"
    return f"{k[6]} pool" if k[6] else k[1]

def order_of(k):
    return (SUITES.index(k[0]), k[1], k[3], k[5], k[4], k[2], k[6])

groups = {}
for r in ok:
    groups.setdefault(key(r), {}).setdefault(r["target"], []).append(r)

def med(rs, field):
    vals = [r[field] for r in rs if r.get(field) is not None]
    return statistics.median(vals) if vals else None

summary = {}
for k, by_target in groups.items():
    for target, rs in by_target.items():
        summary[k + (target,)] = dict(n=len(rs), binary=rs[0].get("binary"), **{f: med(rs, f) for f in FIELDS})

def ratio(a, b):
    return a / b if a is not None and b else None

def fmt(v, spec):
    width = "".join(ch for ch in spec.split(".")[0] if ch.isdigit())
    return format(v, spec) if v is not None else "-".rjust(int(width or 0))

has_cluster = any(r["suite"] == "cluster" for r in rows)
print(f"\nchash-proxy vs nutcracker vs direct: medians of {rounds} rounds (targets interleaved, "
      f"order rotated each round) on {cores} shared cores; 4 redis + 4 memcached on loopback"
      + ("; cluster suite: a Redis Cluster of 3 nodes and 3 plain redis" if has_cluster else ""))
print(f"'chash-proxy' runs --workers {cores} (one per core), 'chash-proxy-w1' --workers 1 (the default is half the "
      f"cores: {max(1, int(cores) // 2)} here); "
      "ratios are ops/s (and p50, p99) of each chash-proxy row over nutcracker's and direct's")
if base_bin:
    print(f"'base' and 'base-w1' run the --baseline ({base_bin}) with the same configuration, each next "
          f"to its counterpart in the rotation; ratios for them too, and chash-proxy over base at the end")
print("cpu/req: microseconds of CPU per request (per MGET for mget; per command for mixed, where a "
      "transaction is 4) spent by the proxy, by the servers behind it and by the load generator; the "
      "load generator, the proxy and the servers share the cores, so on a small machine what a proxy "
      "spends is taken from the others")
if has_sys:
    print("sys/req: system calls per request of the proxy and of the servers (perf stat, --syscalls)")
sys_head = f" {'sys/req: proxy':>14} {'servers':>7}" if has_sys else ""
tw = 18 if any(r["target"] == "stunnel+nutcracker" for r in rows) else 14  # the target column
head = (f"{'suite':<9} {'tool':<15} {'test':<11} {'P':>2} {'cli':>3} {'keys':>4}  {'target':<{tw}} "
        f"{'ops/s':>9} {'avg ms':>7} {'p50 ms':>7} {'p99 ms':>7} {'cpu/req: proxy':>14} {'servers':>7} {'loadgen':>7}"
        f"{sys_head}  {'ops/nc':>6} {'ops/dir':>7} "
        f"{'p50/nc':>6} {'p99/nc':>6} {'p50/dir':>7} {'p99/dir':>7}")
print(head)
print("-" * len(head))
out_rows = []
for k in sorted(groups, key=order_of):
    suite, tool, test, pipeline, clients, keys, pool = k
    # Over TLS, nutcracker is stunnel+nutcracker.
    nc = summary.get(k + ("nutcracker",)) or summary.get(k + ("stunnel+nutcracker",))
    di = summary.get(k + ("direct",))
    for target in order:
        s = summary.get(k + (target,))
        if not s:
            continue
        rs = dict(bench="proxy-summary", suite=suite, tool=tool, test=test, pipeline=pipeline,
                  clients=clients, keys=keys, target=target, rounds=s["n"], **{f: s[f] for f in FIELDS})
        if pool:
            rs["tls" if suite == "tls" else "pool"] = pool
        cols = ""
        if s["binary"] is not None:
            rs["binary"] = s["binary"]
        if target.startswith("chash") or target.startswith("base"):
            for name, base in (("nutcracker", nc), ("direct", di)):
                for f in ("ops_per_sec", "p50_ms", "p99_ms"):
                    rs[f"{f}_over_{name}"] = ratio(s[f], base[f]) if base else None
            cols = (f"  {fmt(rs['ops_per_sec_over_nutcracker'], '6.2f')} {fmt(rs['ops_per_sec_over_direct'], '7.2f')} "
                    f"{fmt(rs['p50_ms_over_nutcracker'], '6.2f')} {fmt(rs['p99_ms_over_nutcracker'], '6.2f')} "
                    f"{fmt(rs['p50_ms_over_direct'], '7.2f')} {fmt(rs['p99_ms_over_direct'], '7.2f')}")
        print(f"{suite:<9} {tool_of(k):<15} {test:<11} {pipeline:>2} {clients:>3} {keys:>4}  {target:<{tw}} "
              f"{fmt(s['ops_per_sec'], '9.0f')} {fmt(s['avg_ms'], '7.3f')} {fmt(s['p50_ms'], '7.3f')} "
              f"{fmt(s['p99_ms'], '7.3f')} {fmt(s['proxy_cpu_us_per_req'], '14.2f')} "
              f"{fmt(s['servers_cpu_us_per_req'], '7.2f')} {fmt(s['loadgen_cpu_us_per_req'], '7.2f')}"
              + (f" {fmt(s['proxy_syscalls_per_req'], '14.2f')} {fmt(s['servers_syscalls_per_req'], '7.2f')}"
                 if has_sys else "") + cols)
        out_rows.append(rs)
    print()
mixed_all = [r for r in ok if r["suite"] == "mixed" and r["tool"] == "mixload" and r["test"] == "ALL"]
if mixed_all or mixed_skipped:
    print("mixed: ALL is per command (a transaction is MULTI, SET, INCR, EXEC: 4), TXN per transaction, "
          "MSG per message received (publish to delivery); cpu/req per command on every row; "
          "mixload-plain is the control: the same clients sending its GET and SET alone")
    for target in order:
        rs = [r for r in mixed_all if r["target"] == target]
        if not rs:
            continue
        pub = sum(r["published"] for r in rs)
        exp = sum(r["messages_expected"] for r in rs)
        got = sum(r["messages_received"] for r in rs)
        self_cpu = med(rs, "loadgen_self_cpu_us_per_req")
        print(f"  {target:<14} {len(rs)} runs: {pub} PUBLISH, {exp} messages counted by the servers "
              f"(published x {rs[0]['subscribers']} subscribers), {got} received: "
              f"{'all, none extra' if got == exp else 'MISMATCH'}; load generator by its own count "
              f"{fmt(self_cpu, '.2f')} us CPU/command")
    for target in mixed_skipped:
        print(f"  {target:<14} left out: the --baseline binary cannot serve transactions or subscriptions")
    print()
if errors:
    print("runs that failed (no numbers):")
    for r in errors:
        print(f"  round {r['round']}: {r['suite']} {r['target']} {r['test']}")

def get(suite, tool, test, pipeline, target, clients=50, keys=1, pool=""):
    return summary.get((suite, tool, test, pipeline, clients, keys, pool, target))

def per_round(suite, tool, test, pipeline, target, base, field="ops_per_sec", clients=50):
    """The ratio within each round: slow drifts in the machine's load cancel out."""
    def rows_of(t):
        return {r["round"]: r[field] for r in ok if key(r) == (suite, tool, test, pipeline, clients, 1, "")
                and r["target"] == t and r.get(field) is not None}
    a, b = rows_of(target), rows_of(base)
    return [a[n] / b[n] for n in sorted(a) if n in b and b[n]]

def bar(name, value, rounds_, need, ok_if, unit=""):
    if value is None:
        print(f"  {name}: no data")
        return
    each = " ".join(f"{v:.2f}" for v in rounds_)
    print(f"  {name}: {value:.3f}{unit} (bar {need}) -> {'met' if ok_if(value) else 'MISSED'}"
          + (f"; per round: {each}" if each else ""))

def added_us(t, field, clients=5):
    """Latency a target adds over direct (GET -P1), in us: medians."""
    c = get("redis", "redis-benchmark", "GET", 1, t, clients=clients)
    d = get("redis", "redis-benchmark", "GET", 1, "direct", clients=clients)
    return (c[field] - d[field]) * 1000 if c and d and c[field] is not None else None

# Issue 18's goals, for every chash-proxy (and base) row: CPU per request
# against nutcracker's, ops/s against nutcracker's, system calls per request,
# and the latency added at light load.
if any(r["suite"] == "redis" for r in ok):
    print("The issue's bars (issue 18): ratio of the medians, then the ratio within each round")
for t in ("chash-proxy", "base", "chash-proxy-w1", "base-w1"):
    if not any(r["suite"] == "redis" and r["target"] == t for r in ok):
        continue
    for p, need in ((1, 0.5), (16, 0.3)):
        c = get("redis", "redis-benchmark", "GET", p, t)
        n = get("redis", "redis-benchmark", "GET", p, "nutcracker")
        bar(f"GET -P{p} {t} / nutcracker CPU us/req", ratio(c and c["proxy_cpu_us_per_req"],
            n and n["proxy_cpu_us_per_req"]), per_round("redis", "redis-benchmark", "GET", p, t,
            "nutcracker", "proxy_cpu_us_per_req"), f"<= {need}", lambda v, need=need: v <= need)
    for p, need in ((1, 1.25), (16, 2.0)):
        c = get("redis", "redis-benchmark", "GET", p, t)
        n = get("redis", "redis-benchmark", "GET", p, "nutcracker")
        bar(f"GET -P{p} {t} / nutcracker ops/s", ratio(c and c["ops_per_sec"], n and n["ops_per_sec"]),
            per_round("redis", "redis-benchmark", "GET", p, t, "nutcracker"), f">= {need}",
            lambda v, need=need: v >= need)
    c = get("redis", "redis-benchmark", "GET", 1, t)
    if has_sys:
        bar(f"GET -P1 {t} system calls/req", c and c["proxy_syscalls_per_req"], [], "<= 1.0",
            lambda v: v <= 1.0)
    mine, nut = added_us(t, "p50_ms"), added_us("nutcracker", "p50_ms")
    if mine is not None and nut is not None:
        bar(f"GET -P1 5 clients {t} p50 added over direct, us (nutcracker {nut:.0f})", mine, [],
            "<= nutcracker's", lambda v, nut=nut: v <= nut)
        mine, nut = added_us(t, "p99_ms"), added_us("nutcracker", "p99_ms")
        print(f"  GET -P1 5 clients {t} p99 added over direct: {mine:.0f} us (nutcracker {nut:.0f})")

def per_round_of(k, target, base, field):
    """per_round for any row key: the ratio within each round."""
    def rows_of(t):
        return {r["round"]: r[field] for r in ok if key(r) == k and r["target"] == t and r.get(field) is not None}
    a, b = rows_of(target), rows_of(base)
    return [a[n] / b[n] for n in sorted(a) if n in b and b[n]]

if base_bin:
    print(f"\nchash-proxy over base ({base_bin}): ratio of the medians (new/base), then the ratio within "
          f"each round and its range; cpu/req (and sys/req) is the proxy's own. A set,get run's CPU is "
          f"shared out over both tests, so its SET and GET rows carry the same CPU figures")
    pw = 5 * rounds + 12  # "1.01 0.99 1.00 (0.99-1.01)"
    head = (f"{'suite':<9} {'tool':<15} {'test':<11} {'P':>2} {'cli':>3} {'keys':>4}  {'new':<14} "
            f"{'ops/s new':>9} {'base':>9} {'new/base':>8}  {'per round (range)':<{pw}} "
            f"{'cpu/req new':>11} {'base':>7} {'new/base':>8}  {'per round (range)':<{pw}}"
            + (f" {'sys/req new':>11} {'base':>7} {'new/base':>8}  {'per round (range)':<{pw}}" if has_sys else ""))
    print(head)
    print("-" * len(head))
    by_target = {(rs["suite"], rs["tool"], rs["test"], rs["pipeline"], rs["clients"], rs["keys"],
                  rs.get("pool", rs.get("tls", "")), rs["target"]): rs for rs in out_rows}
    for k in sorted(groups, key=order_of):
        for new, base in PAIRS:
            n, b = summary.get(k + (new,)), summary.get(k + (base,))
            if not n or not b:
                continue
            cols = []
            for f, spec_new, spec_base in (("ops_per_sec", "9.0f", "9.0f"),
                                           ("proxy_cpu_us_per_req", "11.2f", "7.2f"),
                                           ("proxy_syscalls_per_req", "11.2f", "7.2f"))[:3 if has_sys else 2]:
                r = ratio(n[f], b[f])
                each = per_round_of(k, new, base, f)
                by_target[k + (new,)][f"{f}_over_base"] = r
                by_target[k + (new,)][f"{f}_over_base_per_round"] = each
                rounds_ = " ".join(f"{v:.2f}" for v in each)
                if each:
                    rounds_ += f" ({min(each):.2f}-{max(each):.2f})"
                cols.append(f"{fmt(n[f], spec_new)} {fmt(b[f], spec_base)} {fmt(r, '8.3f')}  {rounds_ or '-':<{pw}}")
            print(f"{k[0]:<9} {tool_of(k):<15} {k[2]:<11} {k[3]:>2} {k[4]:>3} {k[5]:>4}  {new:<14} "
                  + " ".join(cols).rstrip())
    print()

def rows_by_round(k, target, field):
    return {r["round"]: r[field] for r in ok if key(r) == k and r["target"] == target and r.get(field) is not None}

if has_cluster:
    print(f"\nthe cluster pool over the ketama pool, each proxy: the same redis-benchmark runs in front of a "
          f"Redis Cluster of 3 nodes (distribution redis-cluster) and on a ketama pool of 3 plain redis-server; "
          f"the median of each, their ratio (cluster/ketama) and the ratio within each round and its range. "
          f"cpu/req (and sys/req) is the proxy's own, per request; a set,get run's CPU is shared out over "
          f"both tests, so its SET and GET rows carry the same CPU figures")
    pw = 5 * rounds + 12
    head = (f"{'test':<5} {'P':>2}  {'proxy':<14} "
            f"{'ops/s cl':>9} {'ketama':>9} {'cl/ket':>7}  {'per round (range)':<{pw}} "
            f"{'cpu/req cl':>10} {'ketama':>7} {'cl/ket':>7}  {'per round (range)':<{pw}}"
            + (f" {'sys/req cl':>10} {'ketama':>7} {'cl/ket':>7}  {'per round (range)':<{pw}}" if has_sys else ""))
    print(head)
    print("-" * len(head))
    by_target = {(rs["suite"], rs["tool"], rs["test"], rs["pipeline"], rs["clients"], rs["keys"],
                  rs.get("pool", rs.get("tls", "")), rs["target"]): rs for rs in out_rows}
    for k in sorted((k for k in groups if k[0] == "cluster" and k[6] == "cluster"), key=order_of):
        kk = k[:6] + ("ketama",)
        for target in order:
            c, b = summary.get(k + (target,)), summary.get(kk + (target,))
            if not c or not b:
                continue
            cols = []
            for f, spec_new, spec_base in (("ops_per_sec", "9.0f", "9.0f"),
                                           ("proxy_cpu_us_per_req", "10.2f", "7.2f"),
                                           ("proxy_syscalls_per_req", "10.2f", "7.2f"))[:3 if has_sys else 2]:
                r = ratio(c[f], b[f])
                a_, b_ = rows_by_round(k, target, f), rows_by_round(kk, target, f)
                each = [a_[n] / b_[n] for n in sorted(a_) if n in b_ and b_[n]]
                by_target[k + (target,)][f"{f}_over_ketama"] = r
                by_target[k + (target,)][f"{f}_over_ketama_per_round"] = each
                rounds_ = " ".join(f"{v:.2f}" for v in each)
                if each:
                    rounds_ += f" ({min(each):.2f}-{max(each):.2f})"
                cols.append(f"{fmt(c[f], spec_new)} {fmt(b[f], spec_base)} {fmt(r, '7.3f')}  {rounds_ or '-':<{pw}}")
            print(f"{k[2]:<5} {k[3]:>2}  {target:<14} " + " ".join(cols).rstrip())
    for target in cluster_skipped:
        print(f"  {target:<14} left out of the cluster pool: the --baseline binary does not serve distribution "
              f"redis-cluster (its ketama pool rows are in the tables)")
    if cluster_checks:
        print("each proxy's counters at the end of the run (stats port; the pools were filled through "
              "chash-proxy first): errors, redirects followed, requests per shard (cluster) or server (ketama)")
        for c in cluster_checks:
            errs = sum(c.get(f) or 0 for f in ("client_err", "forward_error", "cluster_redirect_failed",
                                               "server_err", "server_timedout"))
            redirects = ("" if c["pool"] != "cluster" else
                         f", MOVED {c.get('cluster_moved')}, ASK {c.get('cluster_ask')}, "
                         f"retried {c.get('cluster_retried')}, redirect failed {c.get('cluster_redirect_failed')}")
            print(f"  {c['target']:<14} {c['pool']:<7} client_err {c.get('client_err')}, forward_error "
                  f"{c.get('forward_error')}, server_err {c.get('server_err')}, timed out "
                  f"{c.get('server_timedout')}{redirects}; requests "
                  + " ".join(f"{n} {v}" for n, v in c["requests"].items())
                  + ("" if errs == 0 else "  <- ERRORS"))
    print()

has_tls = any(r["suite"] == "tls" for r in rows)
if has_tls:
    by_target = {(rs["suite"], rs["tool"], rs["test"], rs["pipeline"], rs["clients"], rs["keys"],
                  rs.get("pool", rs.get("tls", "")), rs["target"]): rs for rs in out_rows}
    MODES = ("none", "clients", "both")
    def tk(test, p, mode):
        return ("tls", "redis-benchmark", test, p, 50, 1, mode)
    def tsum(test, p, mode, target):
        return summary.get(tk(test, p, mode) + (target,))
    def tval(test, p, mode, target, f):
        s_ = tsum(test, p, mode, target)
        return s_ and s_[f]
    print(f"\nthe cost of TLS: redis-benchmark -t set,get -c 50 -r 100000 (-n --requests) as in the redis "
          f"suite, medians of {rounds} rounds; tls: none (plaintext), clients "
          f"(the client's connection is TLS: redis-benchmark --tls to the target) or both (the proxy's to "
          f"the servers too, to redis-server on its --tls-port). cpu/req is microseconds of CPU per request "
          f"of the set,get run (its SET and GET share it): the proxy's (stunnel+nutcracker: the two summed, "
          f"then each), the servers' and the load generator's; direct's 'proxy' is none, its TLS is the "
          f"server's own")
    for r in sorted(tls_sessions, key=lambda r: (order.index(r["target"]) if r["target"] in order else 99, r["tls"])):
        print(f"  negotiated with {r['target']} (tls {r['tls']}): {r['session']} (openssl s_client, verified "
              f"against the CA for 127.0.0.1)")
    head = (f"{'P':>2}  {'target':<18} {'tls':<7} {'SET ops/s':>9} {'GET ops/s':>9} {'SET p50':>7} {'GET p50':>7}  "
            f"{'cpu/req: proxy':>14} {'stunnel':>7} {'nutcr.':>7} {'servers':>7} {'loadgen':>7}"
            + (f" {'sys/req: proxy':>14} {'servers':>7}" if has_sys else ""))
    print(head)
    print("-" * len(head))
    for p in (1, 16):
        for target in order:
            for mode in MODES:
                g, st = tsum("GET", p, mode, target), tsum("SET", p, mode, target)
                if not g and not st:
                    continue
                c = g or st
                print(f"{p:>2}  {target:<18} {mode:<7} {fmt(st and st['ops_per_sec'], '9.0f')} "
                      f"{fmt(g and g['ops_per_sec'], '9.0f')} {fmt(st and st['p50_ms'], '7.3f')} "
                      f"{fmt(g and g['p50_ms'], '7.3f')}  {fmt(c['proxy_cpu_us_per_req'], '14.2f')} "
                      f"{fmt(c['stunnel_cpu_us_per_req'], '7.2f')} {fmt(c['nutcracker_cpu_us_per_req'], '7.2f')} "
                      f"{fmt(c['servers_cpu_us_per_req'], '7.2f')} {fmt(c['loadgen_cpu_us_per_req'], '7.2f')}"
                      + (f" {fmt(c['proxy_syscalls_per_req'], '14.2f')} {fmt(c['servers_syscalls_per_req'], '7.2f')}"
                         if has_sys else ""))
        print()

    def per_round_pair(ka, ta, kb, tb, f):
        a_, b_ = rows_by_round(ka, ta, f), rows_by_round(kb, tb, f)
        return [a_[n] / b_[n] for n in sorted(a_) if n in b_ and b_[n]]
    pw = 5 * rounds + 12
    def compare(title, pairs, label_a, label_b):
        # pairs: (name, (target, mode) with, (target, mode) without); cpu/req is the proxy's
        # (direct: the server's), GET ops/s beside it
        print(title)
        head = (f"{'P':>2}  {'':<50} {'cpu/req ' + label_a:>14} {label_b:>9} {'+us':>6} {'ratio':>6}  "
                f"{'per round (range)':<{pw}} {'GET ops/s ' + label_a:>16} {label_b:>9} {'ratio':>6}  "
                f"{'per round (range)':<{pw}}")
        print(head)
        print("-" * len(head))
        for p in (1, 16):
            for name, (ta, ma), (tb, mb) in pairs:
                cpu_f = "servers_cpu_us_per_req" if ta == "direct" else "proxy_cpu_us_per_req"
                a, b = tsum("GET", p, ma, ta), tsum("GET", p, mb, tb)
                if not a or not b:
                    continue
                cols = []
                for f in (cpu_f, "ops_per_sec"):
                    r = ratio(a[f], b[f])
                    each = per_round_pair(tk("GET", p, ma), ta, tk("GET", p, mb), tb, f)
                    rounds_ = " ".join(f"{v:.2f}" for v in each)
                    if each:
                        rounds_ += f" ({min(each):.2f}-{max(each):.2f})"
                    rs = by_target.get(tk("GET", p, ma) + (ta,))
                    if rs is not None:
                        suffix = "cpu_us_per_req" if f == cpu_f else f
                        rs[f"{suffix}_over_{tb}_{mb}"] = r
                        rs[f"{suffix}_over_{tb}_{mb}_per_round"] = each
                    if f == cpu_f:
                        plus = a[f] - b[f] if a[f] is not None and b[f] is not None else None
                        cols.append(f"{fmt(a[f], '14.2f')} {fmt(b[f], '9.2f')} {fmt(plus, '+6.2f')} "
                                    f"{fmt(r, '6.2f')}  {rounds_ or '-':<{pw}}")
                    else:
                        cols.append(f"{fmt(a[f], '16.0f')} {fmt(b[f], '9.0f')} {fmt(r, '6.2f')}  {rounds_ or '-':<{pw}}")
                print(f"{p:>2}  {name:<50} " + " ".join(cols).rstrip())
        print()
    proxies = [t for t in ("chash-proxy", "base", "chash-proxy-w1", "base-w1")
               if any(r["target"] == t and r["suite"] == "tls" for r in ok)]
    pairs = []
    for t in proxies:
        pairs.append((f"{t}: tls clients / none", (t, "clients"), (t, "none")))
        pairs.append((f"{t}: tls both / none", (t, "both"), (t, "none")))
    pairs.append(("stunnel+nutcracker / nutcracker", ("stunnel+nutcracker", "clients"), ("nutcracker", "none")))
    pairs.append(("direct: redis-server TLS / plaintext (server cpu)", ("direct", "clients"), ("direct", "none")))
    compare("TLS over plaintext, each target: cpu/req with TLS and without, what TLS adds (us), their ratio "
            "(of the medians, then within each round); GET ops/s likewise", pairs, "TLS", "plain")
    pairs = []
    for t in proxies:
        pairs.append((f"{t} (tls clients) / stunnel+nutcracker", (t, "clients"), ("stunnel+nutcracker", "clients")))
    for t in proxies:
        pairs.append((f"{t} (none) / nutcracker", (t, "none"), ("nutcracker", "none")))
    compare("chash-proxy with TLS over stunnel in front of nutcracker (what a twemproxy user runs today), and "
            "plaintext over nutcracker for scale: the proxy's cpu/req (stunnel+nutcracker: both summed)",
            pairs, "chash", "other")
    for target in tls_skipped:
        print(f"  {target:<14} left out of the tls suite: the --baseline binary does not take the tls_* keys")
    if not any(r["target"] == "stunnel+nutcracker" for r in rows if r["suite"] == "tls"):
        print("  stunnel+nutcracker: not run (no stunnel4 here: apt-get install stunnel4)")
    if tls_checks:
        print(f"counters at the end of the run (stats port; a TLS pool's handshakes should be 2 for the checks "
              f"+ 101 a redis-benchmark run (50 clients a test, 1 for its CONFIG GET): {2 + 101 * 2 * rounds}; "
              f"stunnel: its log of warnings and errors during the rounds):")
        for c in tls_checks:
            if c["target"] == "stunnel":
                print(f"  stunnel        {c['log_lines']} log lines during the rounds" + (f"; last: {c['log_tail']!r}" if c["log_lines"] else ""))
                continue
            errs = sum(c.get(f) or 0 for f in ("tls_handshake_errors", "client_err", "forward_error",
                                               "server_err", "server_timedout"))
            print(f"  {c['target']:<14} {c['pool']:<13} tls_handshakes {c.get('tls_handshakes')}, "
                  f"tls_handshake_errors {c.get('tls_handshake_errors')}, client_err {c.get('client_err')}, "
                  f"forward_error {c.get('forward_error')}, server_err {c.get('server_err')}, timed out "
                  f"{c.get('server_timedout')}, requests {c.get('requests')}" + ("" if errs == 0 else "  <- ERRORS"))
    print()

with open(path, "a") as f:
    for rs in out_rows:
        f.write(json.dumps(rs) + "\n")
print(f"\nJSON rows (per round, then bench=proxy-summary medians): {path}")
PY
