#!/usr/bin/env bash
# test_cli_compat.sh CHASH - `chash lookup` with the drop-in presets: every
# committed peer vector case whose keys fit on a line must come out the same
# through the CLI (names as `name weight` lines, plus the settings of the
# case), the peers' own nodes-file syntax reads as the peers read it, and bad
# input fails with exit 2 and one line naming the file and line.
set -u
CHASH=${1:?usage: test_cli_compat.sh path/to/chash}
NAME=test_cli_compat
. "$(dirname "$0")/testlib.sh"

usage_error() { # usage_error WANT_IN_STDERR ARGS...
    local want=$1
    shift
    "$CHASH" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    local got=$?
    if [ "$got" -ne 2 ] || [ "$(wc -l <"$TMP/err")" -ne 1 ] || ! grep -q -- "$want" "$TMP/err"; then
        bad "chash $*: exit $got, want 2 and one line with '$want'; stderr: $(cat "$TMP/err")"
    else ok; fi
}

# --- every vector case through the CLI
python3 - "$CHASH" "$TMP" "$SRC"/tests/vectors/{ketama,twemproxy,nginx}.txt <<'EOF' && ok || bad "vectors through chash lookup"
import subprocess, sys
chash, tmp, files = sys.argv[1], sys.argv[2], sys.argv[3:]
cases = keys = 0
for path in files:
    case = None
    for line in open(path):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if f[0] == "case":
            case = {"head": f, "nodes": [], "keys": []}
        elif f[0] == "node":
            case["nodes"].append((bytes.fromhex(f[1]), f[2]))
        elif f[0] == "key":
            k = bytes.fromhex(f[1]) if len(f) == 3 else b""
            case["keys"].append((k, bytes.fromhex(f[-1])))
        elif f[0] == "end":
            _, scheme, algo, hash_name, tag, _ = case["head"]
            usable = [(k, o) for k, o in case["keys"] if not set(k) & set(b"\n\r\t")]
            if any(set(n) & set(b" \t#\n") for n, _ in case["nodes"]) or not usable:
                continue
            with open(tmp + "/nodes", "wb") as nf:
                for n, w in case["nodes"]:
                    nf.write(n + b" " + w.encode() + b"\n")
            argv = [chash, "lookup", "--scheme", scheme, "--algo", algo, "--hash", hash_name,
                    "--nodes-file", tmp + "/nodes"]
            if tag != "-":
                argv += ["--hash-tag", bytes.fromhex(tag).decode()]
            out = subprocess.run(argv, input=b"".join(k + b"\n" for k, _ in usable),
                                 stdout=subprocess.PIPE, check=True).stdout.split(b"\n")[:-1]
            assert len(out) == len(usable), (path, len(out), len(usable))
            for (k, o), got in zip(usable, out):
                key, _, node = got.rpartition(b"\t")
                assert key == k and node == o, (path, case["head"], k, node, o)
            cases += 1
            keys += len(usable)
assert cases >= 100 and keys >= 5000, (cases, keys)
print("vectors through chash lookup: %d cases, %d keys" % (cases, keys))
EOF

# --- twemproxy: nutcracker's server lines and YAML
cat >"$TMP/tw.lines" <<'EOF'
# nutcracker server strings
10.0.0.1:11211:1
10.0.0.2:11212:2 beta
/var/run/redis.sock:1
EOF
"$CHASH" lookup --scheme twemproxy --hash md5 --nodes-file "$TMP/tw.lines" $(seq -f 'k%g' 1 200) >"$TMP/out" 2>"$TMP/err"
[ $? -eq 0 ] && ok || bad "twemproxy lines: $(cat "$TMP/err")"
[ "$(cut -f2 "$TMP/out" | sort -u | tr '\n' ' ')" = "/var/run/redis.sock: 10.0.0.1 beta " ] &&
    ok || bad "nutcracker's names: $(cut -f2 "$TMP/out" | sort -u | tr '\n' ' ')"
cat >"$TMP/nc.yml" <<'EOF'
alpha:
  listen: 127.0.0.1:22121
  hash: md5
  hash_tag: "{}"
  distribution: modula
  servers:
   - 10.0.0.1:6379:1
   - 10.0.0.2:6379:3 b
beta:
  listen: 127.0.0.1:22122
  servers:
   - 10.0.0.9:6379:1
EOF
usage_error "several pools (alpha, beta): choose one with --pool" lookup --scheme twemproxy --nodes-file "$TMP/nc.yml" k
usage_error "no pool 'gamma'" lookup --scheme twemproxy --nodes-file "$TMP/nc.yml" --pool gamma k
"$CHASH" lookup --scheme twemproxy --nodes-file "$TMP/nc.yml" --pool alpha 'x{k1}' 'y{k1}' >"$TMP/out"
[ "$(cut -f2 "$TMP/out" | sort -u | wc -l)" -eq 1 ] && ok || bad "the pool's hash_tag applies"
printf '10.0.0.1:6379\nb 3\n' >"$TMP/same"
# Both sides must answer: two failed lookups would agree on nothing.
y=$("$CHASH" lookup --scheme twemproxy --nodes-file "$TMP/nc.yml" --pool alpha a b c d e f g h | cut -f2)
n=$("$CHASH" lookup --scheme twemproxy --algo modulo --hash md5 --nodes-file "$TMP/same" a b c d e f g h | cut -f2)
[ "$(printf '%s\n' "$y" | grep -c .)" -eq 8 ] && [ "$y" = "$n" ] && ok ||
    bad "YAML settings (modula, md5): $(echo $y) vs $(echo $n)"
y=$("$CHASH" lookup --scheme twemproxy --nodes-file "$TMP/nc.yml" --pool alpha --algo ring --hash crc32a $(seq -f 'k%g' 1 50) | cut -f2)
n=$("$CHASH" lookup --scheme twemproxy --hash crc32a --hash-tag '{}' --nodes-file "$TMP/same" $(seq -f 'k%g' 1 50) | cut -f2)
[ "$(printf '%s\n' "$y" | grep -c .)" -eq 50 ] && [ "$y" = "$n" ] && ok ||
    bad "the command line wins over the YAML pool"
printf 'p:\n  distribution: random\n  servers:\n   - 1.2.3.4:1:1\n' >"$TMP/random.yml"
usage_error "random.yml:2: distribution 'random'" lookup --scheme twemproxy --nodes-file "$TMP/random.yml" k
printf 'p:\n  hash: sha1\n  servers:\n   - 1.2.3.4:1:1\n' >"$TMP/sha.yml"
usage_error "sha.yml:2: unknown hash 'sha1'" lookup --scheme twemproxy --nodes-file "$TMP/sha.yml" k
printf 'p:\n  servers:\n   - 1.2.3.4:1:1\n   - 1.2.3.5:1:0\n' >"$TMP/zero.yml"
usage_error "zero.yml:4: zero weight" lookup --scheme twemproxy --nodes-file "$TMP/zero.yml" k
printf 'p:\n  servers:\n   - 1.2.3.4:1:1 a\n   - 1.2.3.5:1:1 a\n' >"$TMP/twice.yml"
usage_error "twice.yml:4: node 'a' is listed twice" lookup --scheme twemproxy --nodes-file "$TMP/twice.yml" k
printf 'p: [oops\n' >"$TMP/broken.yml"
printf 'servers:\n' >>"$TMP/broken.yml"
usage_error "broken.yml:.*YAML" lookup --scheme twemproxy --nodes-file "$TMP/broken.yml" k
printf 'a 1\n10.0.0.1:99999:1\n' >"$TMP/port"
usage_error "port:2: bad port" lookup --scheme twemproxy --nodes-file "$TMP/port" k
usage_error "--pool names a pool" lookup --scheme twemproxy --nodes 3 --pool p k
usage_error "needs a nutcracker YAML" lookup --scheme twemproxy --nodes-file "$TMP/tw.lines" --pool p k

# --- nginx: server lines, alone or in an upstream block
cat >"$TMP/up.conf" <<'EOF'
upstream backend {
    hash $arg_k consistent;   # as in nginx.conf
    zone backend 64k;
    server 10.0.0.1:8080 weight=2 max_fails=3 fail_timeout=10s;
    server 10.0.0.2:8080; server unix:/tmp/app.sock;
}
EOF
printf '10.0.0.1:8080 2\n10.0.0.2:8080\nunix:/tmp/app.sock\n' >"$TMP/up.names"
a=$("$CHASH" lookup --scheme nginx --nodes-file "$TMP/up.conf" $(seq -f 'k%g' 1 300))
b=$("$CHASH" lookup --scheme nginx --nodes-file "$TMP/up.names" $(seq -f 'k%g' 1 300))
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "nginx server lines = name weight lines"
printf 'server 10.0.0.1:80 down;\n' >"$TMP/down.conf"
usage_error "down.conf:1: 'down' servers are not supported" lookup --scheme nginx --nodes-file "$TMP/down.conf" k
printf 'upstream u {\nserver 10.0.0.1:80;\nleast_conn;\n}\n' >"$TMP/lc.conf"
usage_error "lc.conf:3: unsupported directive 'least_conn'" lookup --scheme nginx --nodes-file "$TMP/lc.conf" k
printf 'server 10.0.0.1:80 weight=0;\n' >"$TMP/w0.conf"
usage_error "w0.conf:1: weight" lookup --scheme nginx --nodes-file "$TMP/w0.conf" k
printf 'upstream u {\nserver 10.0.0.1:80;\n' >"$TMP/open.conf"
usage_error "open.conf:2: the upstream block is not closed" lookup --scheme nginx --nodes-file "$TMP/open.conf" k
printf 'server 10.0.0.1:80\n' >"$TMP/semi.conf"
usage_error "semi.conf:1: expected 'server ADDRESS" lookup --scheme nginx --nodes-file "$TMP/semi.conf" k

# --- options
usage_error "--hash: unknown key hash 'sha1'" lookup --nodes 3 --hash sha1 k
usage_error "--hash-tag: expected two characters" lookup --nodes 3 --hash-tag '{' k
usage_error "unknown scheme 'memcache'" lookup --nodes 3 --scheme memcache k
"$CHASH" lookup --help | grep -q -- '--hash-tag' && ok || bad "lookup --help lists --hash-tag"
"$CHASH" simulate --scheme ketama --nodes 20 --keys 20000 --json >"$TMP/sim" 2>"$TMP/err" &&
    grep -q '"scheme":"ketama"' "$TMP/sim" && ok || bad "simulate --scheme ketama: $(cat "$TMP/err")"
"$CHASH" simulate --scheme twemproxy --hash murmur --hash-tag '{}' --nodes 5 --keys 5000 >/dev/null 2>"$TMP/err" &&
    ok || bad "simulate takes --hash and --hash-tag: $(cat "$TMP/err")"

finish
