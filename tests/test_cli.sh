#!/usr/bin/env bash
# test_cli.sh CHASH - the `chash` command-line contract that scripts rely on:
# output formats, exit codes (0 ok, 1 failure, 2 bad usage or input) and
# one-line reasons on stderr.
set -u
CHASH=${1:?usage: test_cli.sh path/to/chash}
NAME=test_cli
. "$(dirname "$0")/testlib.sh"

# expect_exit CODE ARGS... : runs chash, checks the exit code; stderr kept in $TMP/err
expect_exit() {
    local want=$1
    shift
    "$CHASH" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    local got=$?
    if [ "$got" -ne "$want" ]; then
        bad "chash $* exited $got, want $want; stderr: $(cat "$TMP/err")"
        return 1
    fi
    ok
}

# usage errors: exit 2 and exactly one line on stderr that names the command
usage_error() {
    expect_exit 2 "$@" || return
    local lines
    lines=$(wc -l <"$TMP/err")
    if [ "$lines" -ne 1 ] || ! grep -q '^chash' "$TMP/err"; then
        bad "chash $*: want one 'chash ...' line on stderr, got: $(cat "$TMP/err")"
    else ok; fi
}

# --- help and dispatch
expect_exit 0 --help && grep -q simulate "$TMP/out" && ok || bad "--help lists commands"
expect_exit 0 --version && grep -q '^chash [0-9]' "$TMP/out" && ok || bad "--version"
for c in lookup simulate bench plan ownership; do
    expect_exit 0 "$c" --help && grep -q "usage: chash $c" "$TMP/out" && ok || bad "$c --help"
done
expect_exit 2
usage_error frobnicate
usage_error lookup --bogus --nodes 3 k
usage_error lookup --nodes
usage_error lookup --nodes 0 k
usage_error lookup --nodes x k
usage_error lookup --nodes 3 --vnodes 0 k
usage_error lookup --nodes 3 --vnodes 99999999999999999999 k
usage_error lookup --nodes 3 --scheme ketamax k
usage_error lookup --nodes 3 --algo nope k
usage_error lookup k
usage_error lookup --nodes 3 --names a,b k
usage_error lookup --names a,,b k
usage_error lookup --names a,a k
usage_error lookup --nodes 3 --replicas 0 k
usage_error lookup --nodes 3 --algo modulo --replicas 2 k
usage_error lookup --nodes-file "$TMP/missing" k
usage_error simulate --keys 0
usage_error simulate --remove 10
usage_error simulate --algo ring,ring
usage_error simulate extra
usage_error bench --passes 0
usage_error bench --nope

# --- lookup: formats
expect_exit 0 lookup --nodes 3 alpha beta
[ "$(wc -l <"$TMP/out")" -eq 2 ] && ok || bad "two keys, two lines"
grep -qP '^alpha\tnode-[0-2]$' "$TMP/out" && ok || bad "key<TAB>node format: $(cat "$TMP/out")"
printf 'alpha\nbeta\n\n' | "$CHASH" lookup --nodes 3 >"$TMP/stdin_out" 2>"$TMP/err"
[ $? -eq 0 ] && ok || bad "lookup from stdin"
head -2 "$TMP/stdin_out" | cmp -s - "$TMP/out" && ok || bad "stdin and argument keys agree"
sed -n 3p "$TMP/stdin_out" | grep -qP '^\tnode-[0-2]$' && ok || bad "the empty line is the empty key"
expect_exit 0 lookup --nodes 5 --replicas 3 somekey
line=$(cat "$TMP/out")
replicas=${line#*$'\t'}
IFS=, read -r -a list <<<"$replicas"
[ "${#list[@]}" -eq 3 ] && ok || bad "--replicas 3 gives 3 nodes: $line"
[ "$(printf '%s\n' "${list[@]}" | sort -u | wc -l)" -eq 3 ] && ok || bad "replicas distinct: $line"
single=$("$CHASH" lookup --nodes 5 somekey)
[ "${single#*$'\t'}" = "${list[0]}" ] && ok || bad "replica list starts with the owner"
expect_exit 0 lookup --nodes 2 --replicas 9 k
[ "$(cut -f2 "$TMP/out" | tr ',' '\n' | wc -l)" -eq 2 ] && ok || bad "replicas capped at node count"

# --- lookup --algo buckets: a third column, the key's bucket
expect_exit 0 lookup --algo buckets --bucket-by digits --names u1,u2,u3 user1234 nodigits
grep -qP '^user1234\tu[1-3]\t34$' "$TMP/out" && ok || bad "bucket of user1234: $(cat "$TMP/out")"
grep -qP '^nodigits\tu[1-3]\t[0-9]+$' "$TMP/out" && ok || bad "by hash without digits"
expect_exit 0 lookup --algo buckets --bucket-by digits --hash-tag '{}' --buckets 1000 \
    --names u1,u2,u3 --replicas 3 '{user77}:cart'
grep -qP '^\{user77\}:cart\tu[1-3],u[1-3],u[1-3]\t77$' "$TMP/out" && ok ||
    bad "tagged digits, replicas: $(cat "$TMP/out")"
usage_error lookup --algo buckets --buckets 0 --nodes 2 k
usage_error lookup --algo buckets --bucket-by tens --nodes 2 k

# --- lookup --scheme redis-cluster: the slot, the node or '-' (redis_cluster_fresh.sh
# asks a real server)
id=07c37dfeb235213a872192d90877d0cd55635b91
printf '%s 10.0.0.1:7000@17000,h1 myself,master - 0 0 1 connected 0-8000 [8001-<-%s]\n' \
    "$id" "$id" >"$TMP/cluster"
printf '%s 10.0.0.2:7000@17000 slave %s 0 0 1 connected\nvars currentEpoch 1\n' \
    "${id%?}f" "$id" >>"$TMP/cluster"
expect_exit 0 lookup --scheme redis-cluster --nodes "$TMP/cluster" '{user1000}.following' foo
printf '{user1000}.following\t10.0.0.1:7000\t3443\nfoo\t-\t12182\n' | cmp -s - "$TMP/out" &&
    ok || bad "redis-cluster slot and node: $(cat "$TMP/out")"
expect_exit 0 lookup --scheme redis-cluster --nodes-file "$TMP/cluster" bar
grep -qP '^bar\t10.0.0.1:7000\t5061$' "$TMP/out" && ok || bad "--nodes-file: $(cat "$TMP/out")"
printf '%s 10.0.0.3:7000 master - 0 0 1 connected 16384\n' "$id" >>"$TMP/cluster"
usage_error lookup --scheme redis-cluster --nodes "$TMP/cluster" k
grep -q "cluster:4: expected a slot" "$TMP/err" && ok || bad "line named: $(cat "$TMP/err")"
usage_error lookup --scheme redis-cluster --nodes "$TMP/missing" k
usage_error lookup --scheme redis-cluster --algo ring --names a k
usage_error lookup --scheme redis-cluster --buckets 100 --names a k
usage_error lookup --scheme redis-cluster --hash-tag '[]' --names a k
usage_error lookup --scheme redis-cluster --replicas 2 --names a,b k
usage_error lookup --cluster 127.0.0.1:1 --names a k
usage_error lookup --scheme ketama --cluster 127.0.0.1:1 k
expect_exit 0 lookup --scheme redis-cluster --names a,b foo
grep -qP '^foo\t[ab]\t12182$' "$TMP/out" && ok || bad "no table: rendezvous: $(cat "$TMP/out")"

# --- nodes files: weights, comments, errors with line numbers
cat >"$TMP/nodes" <<'EOF'
# cache fleet
cache-a 1
cache-b   3   # bigger box

cache-c
EOF
expect_exit 0 lookup --nodes-file "$TMP/nodes" k1 k2 k3
[ "$(cut -f2 "$TMP/out" | grep -c '^cache-[abc]$')" -eq 3 ] && ok || bad "nodes file names"
"$CHASH" simulate --nodes-file "$TMP/nodes" --add 0 --keys 40000 --algo ring --json >"$TMP/w.json" 2>&1 &&
    python3 - "$TMP/w.json" <<'EOF' && ok || bad "weight 3 gets about 3x the keys"
import json, sys
d = json.load(open(sys.argv[1]))
nodes = {n["name"]: n["keys_after"] for n in d["results"][0]["nodes"]}
ratio = nodes["cache-b"] / ((nodes["cache-a"] + nodes["cache-c"]) / 2)
sys.exit(0 if 2.4 < ratio < 3.6 else 1)
EOF
printf 'a 1\nb 0\n' >"$TMP/zero"
usage_error lookup --nodes-file "$TMP/zero" k
grep -q ':2:' "$TMP/err" && ok || bad "weight error names line 2: $(cat "$TMP/err")"
printf 'a 1\nb 2 extra\n' >"$TMP/fields"
usage_error lookup --nodes-file "$TMP/fields" k
grep -q ':2:' "$TMP/err" && ok || bad "field error names line 2"
printf 'a\nb\na\n' >"$TMP/dup"
usage_error lookup --nodes-file "$TMP/dup" k
grep -q ':3:' "$TMP/err" && ok || bad "duplicate names line 3"
printf '# nothing\n\n' >"$TMP/empty"
usage_error lookup --nodes-file "$TMP/empty" k
printf 'a\0b\n' >"$TMP/nul"
usage_error lookup --nodes-file "$TMP/nul" k

# --- groupcache scheme = the Go vectors (case: node-0..node-9, 160 replicas)
awk '/^# case [0-9]+: article N=10 replicas=160/{grab=1; next} grab && /^key /{print} grab && /^end/{exit}' \
    "$SRC/tests/vectors/groupcache.txt" >"$TMP/vec"
[ -s "$TMP/vec" ] && ok || bad "found the N=10 V=160 vector case"
python3 - "$TMP/vec" >"$TMP/vec_expected" <<'EOF'
import sys
for line in open(sys.argv[1]):
    _, k, o = line.split()
    print(bytes.fromhex(k).decode() + "\t" + bytes.fromhex(o).decode())
EOF
cut -f1 "$TMP/vec_expected" | "$CHASH" lookup --scheme groupcache --vnodes 160 --nodes 10 >"$TMP/vec_got"
cmp -s "$TMP/vec_got" "$TMP/vec_expected" && ok || bad "groupcache lookups equal Go's"

# --- simulate: the article's demo, in text and JSON
expect_exit 0 simulate
grep -q '^modulo' "$TMP/out" && grep -q '^ring' "$TMP/out" && ok || bad "simulate text table"
expect_exit 0 simulate --json
python3 - "$TMP/out" <<'EOF' && ok || bad "simulate --json: modulo ~91% vs ring ~9%: $(cat "$TMP/out" | head -c 400)"
import json, sys
d = json.load(open(sys.argv[1]))
r = {x["algo"]: x for x in d["results"]}
assert abs(d["ideal_moved_fraction"] - 1 / 11) < 1e-6
assert abs(r["modulo"]["moved_fraction"] - 10 / 11) < 0.01, r["modulo"]
assert abs(r["ring"]["moved_fraction"] - 1 / 11) < 0.02, r["ring"]
for x in r.values():
    for f in ("algo", "moved_fraction", "max_over_mean", "stddev_over_mean", "ideal_moved_fraction"):
        assert f in x, f
    assert sum(n.get("keys_after", 0) for n in x["nodes"]) == d["keys"]
EOF
expect_exit 0 simulate --nodes 20 --remove 2 --keys 50000 --seed 9 --scheme groupcache --vnodes 40 --json
python3 - "$TMP/out" <<'EOF' && ok || bad "simulate --remove 2"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["nodes_after"] == 18 and d["removed"] == ["node-18", "node-19"], d["removed"]
ring = [x for x in d["results"] if x["algo"] == "ring"][0]
removed_share = sum(n["keys_before"] for n in ring["nodes"] if n["name"] in d["removed"]) / d["keys"]
assert abs(ring["moved_fraction"] - removed_share) < 1e-9  # only the removed nodes' keys move
EOF
a=$("$CHASH" simulate --keys 20000 --seed 5 --json)
b=$("$CHASH" simulate --keys 20000 --seed 5 --json)
c=$("$CHASH" simulate --keys 20000 --seed 6 --json)
[ "$a" = "$b" ] && [ "$a" != "$c" ] && ok || bad "simulate is deterministic per seed"

# --- bench: JSON rows with the contract's fields
expect_exit 0 bench --keys 2000 --passes 1 --json
python3 - "$TMP/out" <<'EOF' && ok || bad "bench --json rows"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
algos = {r["algo"] for r in rows}
assert {"ring", "crc32", "bsearch"} <= algos, algos
assert {(r["nodes"], r["vnodes"]) for r in rows} == {(n, v) for n in (10, 100, 1000) for v in (50, 160)}
for r in rows:
    for f in ("algo", "scheme", "nodes", "vnodes", "ns_per_lookup"):
        assert f in r, (f, r)
    assert r["ns_per_lookup"] > 0
EOF

# --- plan: exact ranges; their total equals simulate's measured movement
for i in $(seq 0 9); do echo "node-$i"; done >"$TMP/ten"
{ cat "$TMP/ten"; echo node-10; } >"$TMP/eleven"
expect_exit 0 plan --from "$TMP/ten" --to "$TMP/eleven" --json
"$CHASH" simulate --json >"$TMP/sim.json"
python3 - "$TMP/out" "$TMP/sim.json" <<'EOF2' && ok || bad "plan moved_fraction = simulate's within 0.2 points"
import json, sys
p = json.load(open(sys.argv[1]))
s = json.load(open(sys.argv[2]))
ring = [r for r in s["results"] if r["algo"] == "ring"][0]
assert p["exact"] is True and p["range_count"] == len(p["ranges"]) > 0
assert abs(p["moved_fraction"] - ring["moved_fraction"]) < 0.002, (p["moved_fraction"], ring["moved_fraction"])
total = sum(r["last"] - r["first"] + 1 for r in p["ranges"])
assert abs(total / 2**32 - p["moved_fraction"]) < 1e-9
assert abs(sum(x["fraction"] for x in p["pairs"]) - p["moved_fraction"]) < 1e-9
assert all(x["to"] == "node-10" for x in p["pairs"])
EOF2
expect_exit 0 plan --from "$TMP/ten" --to "$TMP/eleven"
ranges=$(sed -n 's/^# moved: .* in \([0-9]*\) ranges$/\1/p' "$TMP/out")
grep -v '^#' "$TMP/out" | awk -v want="${ranges:-0}" '
    NF != 4 || $1 > $2 || $4 != "node-10" { bad = 1 }
    END { exit bad || NR != want || NR == 0 }' &&
    ok || bad "plan text: the summary's ${ranges:-no} ranges as 'first last from to' lines"
# The ring moves exactly the keys the added node-10 now owns, so keys on
# node-10 must be listed and no others; 200 keys leave ~18 on it.
seq -f 'k%g' 1 200 >"$TMP/keys"
"$CHASH" lookup --nodes-file "$TMP/eleven" <"$TMP/keys" | awk -F'\t' '$2 == "node-10" { print $1 }' |
    sort >"$TMP/on_new"
[ -s "$TMP/on_new" ] && ok || bad "some of the 200 keys land on node-10, so some must move"
expect_exit 0 plan --from "$TMP/ten" --to "$TMP/eleven" --keys "$TMP/keys"
grep -P '^k[0-9]+\t' "$TMP/out" >"$TMP/moved_keys"
cut -f1 "$TMP/moved_keys" | sort | cmp -s - "$TMP/on_new" && ok ||
    bad "plan --keys lists exactly the keys now on node-10: $(cut -f1 "$TMP/moved_keys" | tr '\n' ' ')"
# Each listed move is the two memberships' own answers.
cut -f1 "$TMP/moved_keys" | "$CHASH" lookup --nodes-file "$TMP/ten" | cut -f2 >"$TMP/old_owner"
cut -f1 "$TMP/moved_keys" | "$CHASH" lookup --nodes-file "$TMP/eleven" | cut -f2 >"$TMP/new_owner"
paste "$TMP/old_owner" "$TMP/new_owner" | cmp -s - <(cut -f2,3 "$TMP/moved_keys") && ok ||
    bad "plan --keys: from and to are the lookups in --from and --to"
grep -q "^# keys: $(wc -l <"$TMP/on_new") of 200 move$" "$TMP/out" && ok || bad "plan --keys count"
expect_exit 0 plan --from "$TMP/ten" --to "$TMP/eleven" --algo modulo --json
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['exact'] is False and 0.85 < d['moved_fraction'] < 0.95" "$TMP/out" &&
    ok || bad "plan for modulo is a sampled estimate"
usage_error plan --from "$TMP/ten"
usage_error plan --from "$TMP/ten" --to "$TMP/missing"
usage_error plan --from "$TMP/ten" --to "$TMP/eleven" --nodes 3

# --- ownership: exact shares that sum to 1, weights respected
expect_exit 0 ownership --nodes-file "$TMP/nodes" --json
python3 - "$TMP/out" <<'EOF2' && ok || bad "ownership shares"
import json, sys
d = json.load(open(sys.argv[1]))
assert sum(n["hashes"] for n in d["nodes"]) == d["space"] == 2**32
b = [n for n in d["nodes"] if n["name"] == "cache-b"][0]
assert abs(b["ideal"] - 0.6) < 1e-9 and abs(b["share"] - 0.6) < 0.05
EOF2

# --- write errors are failures, not silence
if [ -w /dev/full ]; then
    "$CHASH" lookup --nodes 3 a >/dev/full 2>"$TMP/err"
    [ $? -eq 1 ] && ok || bad "write error exits 1"
else
    skip "no writable /dev/full: the write-error exit code is unchecked"
fi

finish
