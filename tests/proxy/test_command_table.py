#!/usr/bin/env python3
"""test_command_table.py CHASH_PROXY - the proxy's command table against
redis-server's own COMMAND.

`chash-proxy --commands=tsv` prints the table in proxy/command.c, the only
list of commands the proxy has. A real redis-server (Debian 12's 7.0) is
asked COMMAND over raw RESP, and:

  a. every command and subcommand it lists is in the table (the
     subcommands of a container the table refuses whole are covered by it),
     and the table has nothing else but the proxy's own (PROXY_ONLY);
  b. where the table routes by key positions, they are COMMAND's (legacy
     first/last/step, or the key specs: numkeys, STREAMS, STORE options);
     each difference is in POSITION_EXCEPTIONS with the reason;
     a command with keys is routed by them (or refused), and one without
     keys is not (KEYS_EXCEPTIONS);
  c. what redis flags `blocking` runs on the client's own server connection,
     and nothing else does; what ACL puts in @connection is not sent on a
     server connection other clients share (CONNECTION_EXCEPTIONS); what
     writes goes to its keys' server or to every server, never to any one;
     what the table says a replica may answer (readonly) is what COMMAND
     flags readonly;
  d. what COMMAND's tips say goes to every server does, merged as its
     response policy says (POLICY_EXCEPTIONS); admin and dangerous commands
     the proxy serves are reported;
  e. through a running proxy, every name is found (an unauthenticated
     client gets NOAUTH, not "unknown command", so nothing reaches a
     server), each refused entry answers its reason, and each admin entry
     is refused in a pool with refuse_admin_commands, whose documentation
     names exactly them;
  f. docs/proxy.md's command list is exactly `chash-proxy --commands`;
  g. each entry's ACL categories (`chash-proxy --commands=acl`, which the
     users' +@category rules read) are COMMAND's, the proxy's own entries
     have tools/acl_categories.py's PROXY_OWN, and proxy/command_acl.h is
     what that script writes from this redis-server; what the proxy lets
     past its users' checks is what COMMAND flags no_auth.

Each check returns its problems as a list; the self-test at the start
breaks a copy of the table (an entry removed, a flag dropped, a key moved)
and makes sure every check notices, so the test cannot pass vacuously.
"""
import copy
import difflib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, Env, check, check_eq, free_port, proxy_binary  # noqa: E402

BIN = proxy_binary()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(ROOT, "docs", "proxy.md")
BEGIN = "<!-- commands: begin (chash-proxy --commands) -->\n"
END = "<!-- commands: end -->\n"

# In the table, not in COMMAND.
PROXY_ONLY = {
    "proxy": "the proxy's own command (admin.c)",
    "proxy|locate": "PROXY LOCATE key",
    "proxy|ring": "PROXY RING",
    "proxy|reload": "PROXY RELOAD",
    "proxy|help": "PROXY HELP",
    "debug|object": "redis 7.0 lists DEBUG without subcommands; the proxy serves DEBUG OBJECT "
                    "key on the key's server and refuses every other DEBUG",
    "client|no-touch": "redis 7.2's (the issue asks for it): refused with the reason, where "
                       "redis-server 7.0 would not know it",
}
# A container (subcommands in COMMAND) the table does not route by subcommand,
# or the reverse.
CONTAINER_EXCEPTIONS = {
    "command": "COMMAND alone is a command of its own; command_sub finds COMMAND INFO... "
               "without making COMMAND a container",
    "debug": "see debug|object in PROXY_ONLY",
    "proxy": "the proxy's own: its subcommands are granted apart (+proxy|locate)",
}
# Key positions that differ from COMMAND's first/last/step.
POSITION_EXCEPTIONS = {
    "msetnx": "the table's `last` is the last key itself (-2, before the last value), "
              "which the proxy's key count needs; COMMAND's -1 relies on the step skipping "
              "the final value",
    "publish": "the channel is hashed like a key, to reach the server its SUBSCRIBE went to; "
               "COMMAND lists no keys for PUBLISH (a channel is not a key)",
}
# Commands with keys in COMMAND that the table does not route by key kinds.
KEYS_EXCEPTIONS = {
    "ssubscribe": "shard channels, which COMMAND lists as keys: CK_SUBSCRIBE sends each "
                  "to its server as a key would go",
    "sunsubscribe": "the same for CK_UNSUBSCRIBE",
}
# In ACL's @connection, yet forwarded on a shared server connection.
CONNECTION_EXCEPTIONS = {
    "command": "COMMAND and its subcommands describe the server's commands, the same on "
               "every server, not the connection",
}
# COMMAND's request_policy / response_policy tips the table departs from.
POLICY_EXCEPTIONS = {
    "function|stats": "the engines and libraries are every server's alike once FUNCTION LOAD "
                      "went to all; the running function is one server's either way",
}

KEY_KINDS = {"CK_KEY", "CK_KEYS", "CK_NUMKEYS", "CK_XREAD", "CK_MGET", "CK_SUM", "CK_MSET",
             "CK_WATCH"}
# Keys at fixed positions: the table's first/last/step are COMMAND's.
FIXED_KINDS = {"CK_KEY", "CK_KEYS", "CK_MGET", "CK_SUM", "CK_MSET", "CK_WATCH"}
FANOUT_KINDS = {"CK_ALL_SUM", "CK_ALL_OK", "CK_ALL_SAME", "CK_ALL_AND", "CK_ALL_ANY",
                "CK_ALL_CONCAT", "CK_ALL_NEWEST", "CK_ALL_PAIRS", "CK_ALL_INFO", "CK_RANDOM",
                "CK_SCAN", "CK_WAIT"}
SPLIT_KINDS = {"CK_MGET", "CK_SUM", "CK_MSET"}
# Answered by the proxy, about the client's connection to it.
LOCAL_KINDS = {"CK_PING", "CK_ECHO", "CK_QUIT", "CK_SELECT", "CK_HELLO", "CK_AUTH", "CK_RESET",
               "CK_CLIENT", "CK_CLUSTER", "CK_PROXY", "CK_ACL"}
# What acl_check (proxy/acl.c) lets through whatever a user's rules say.
NO_AUTH_KINDS = {"CK_AUTH", "CK_HELLO", "CK_QUIT", "CK_RESET"}
# A client's transaction or subscriptions, on connections of its own.
HELD_KINDS = {"CK_MULTI", "CK_EXEC", "CK_DISCARD", "CK_WATCH", "CK_UNWATCH", "CK_SUBSCRIBE",
              "CK_PSUBSCRIBE", "CK_UNSUBSCRIBE", "CK_PUNSUBSCRIBE"}
# What each response policy may be merged by, when the proxy fans out. Every
# CK_ALL_* merge fails as a whole when one server fails, so all_succeeded
# holds for each; agg_sum's integers may also come from a split.
RESPONSE_KINDS = {
    "agg_sum": {"CK_ALL_SUM", "CK_SUM"},
    "all_succeeded": {"CK_ALL_OK", "CK_ALL_SAME", "CK_ALL_SUM", "CK_MSET"},
    "one_succeeded": {"CK_ALL_ANY"},
    "agg_logical_and": {"CK_ALL_AND"},
    "agg_logical_or": set(),
    "agg_min": {"CK_WAIT"},
    "agg_max": set(),
}
FLAGS = {"store_option", "script", "blocking", "admin", "geo_store", "dest", "readonly"}


# ---- the proxy's table --------------------------------------------------------

def run_proxy(*args):
    p = subprocess.run([BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10)
    check_eq(p.returncode, 0, "%s: exit status (stderr %r)" % (" ".join(args), p.stderr))
    check_eq(p.stderr, b"", "%s: nothing on stderr" % " ".join(args))
    return p.stdout.decode("utf-8")


def proxy_table():
    """name -> {kind, first, last, step, flags, why}, in the printed order."""
    table = {}
    for line in run_proxy("--commands=tsv").splitlines():
        cols = line.split("\t")
        check_eq(len(cols), 7, "tsv columns of %r" % line)
        name, kind, first, last, step, flags, why = cols
        check(name not in table, "%s twice in the table" % name)
        check(kind.startswith("CK_"), "%s: kind %r" % (name, kind))
        fl = set() if flags == "-" else set(flags.split(","))
        check(fl <= FLAGS, "%s: unknown flags %s (new in command.h? name them in "
              "command.c's flag_names and here)" % (name, fl - FLAGS))
        check((why != "-") == (kind == "CK_REFUSED") or kind == "CK_SUBCMD",
              "%s: a reason exactly when refused: %r" % (name, line))
        table[name] = {"kind": kind, "first": int(first), "last": int(last),
                       "step": int(step), "flags": fl, "why": None if why == "-" else why}
    check(len(table) > 200, "the table has %d entries" % len(table))
    for line in run_proxy("--commands=acl").splitlines():
        name, cats = line.split("\t")
        check(name in table, "--commands=acl names %s, which --commands=tsv does not" % name)
        table[name]["acl"] = set() if cats == "-" else set(cats.split(" "))
    check(all("acl" in t for t in table.values()), "--commands=acl names every entry")
    return table


# ---- redis-server's COMMAND ----------------------------------------------------

def text(v):
    """A COMMAND field as str: bulk strings and statuses (b'+write') alike."""
    v = v.decode() if isinstance(v, bytes) else v
    return v[1:] if isinstance(v, str) and v.startswith("+") else v


def fields(flat):
    """A RESP map sent as a flat array: name, value, name, value..."""
    return {text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


def key_spec(flat):
    spec = fields(flat)
    begin, find = fields(spec["begin_search"]), fields(spec["find_keys"])
    return {"begin": text(begin["type"]),
            "begin_spec": {k: text(v) for k, v in fields(begin["spec"]).items()},
            "find": text(find["type"]),
            "find_spec": {k: text(v) for k, v in fields(find["spec"]).items()}}


def parse_command(entry, out):
    name = text(entry[0])
    tips = [text(t) for t in entry[7]]
    out[name] = {
        "arity": entry[1], "flags": {text(f) for f in entry[2]},
        "first": entry[3], "last": entry[4], "step": entry[5],
        "acl": {text(c) for c in entry[6]},
        "tips": dict(t.split(":", 1) for t in tips if ":" in t),
        "specs": [key_spec(s) for s in entry[8]],
        "subs": [text(s[0]) for s in entry[9]],
    }
    for sub in entry[9]:
        parse_command(sub, out)


def redis_commands(env):
    port, _ = env.redis()
    c = Conn(port)
    reply = c.call("COMMAND")
    version = c.call("INFO", "server")
    c.close()
    check(isinstance(reply, list) and len(reply) > 200, "COMMAND: %r" % (reply,)[:200])
    out = {}
    for entry in reply:
        parse_command(entry, out)
    ver = [ln for ln in version.split(b"\r\n") if ln.startswith(b"redis_version:")]
    return port, out, ver[0].decode() if ver else "redis_version:?"


# ---- the checks: each returns its problems ------------------------------------

def covered(name, table):
    """In the table, or a subcommand of a container it refuses whole."""
    if name in table:
        return True
    container = name.split("|")[0]
    return "|" in name and table.get(container, {}).get("kind") == "CK_REFUSED"


def check_coverage(redis, table):
    """a: both lists name the same commands."""
    bad = ["%s: listed by COMMAND, not in the table (nor refused with its container)" % n
           for n in sorted(redis) if not covered(n, table)]
    bad += ["%s: in the table, not in COMMAND" % n
            for n in sorted(table) if n not in redis and n not in PROXY_ONLY]
    for n, r in sorted(redis.items()):
        kind = table.get(n, {}).get("kind")
        if r["subs"] and kind not in ("CK_SUBCMD", "CK_REFUSED") and n not in \
                CONTAINER_EXCEPTIONS:
            bad.append("%s: COMMAND lists subcommands; the table routes it as %s" % (n, kind))
    for n, t in sorted(table.items()):
        if t["kind"] == "CK_SUBCMD" and not redis.get(n, {}).get("subs") and \
                n not in CONTAINER_EXCEPTIONS:
            bad.append("%s: routed by subcommand, but COMMAND lists none" % n)
    return bad


def spec_of(r, begin, find):
    return [s for s in r["specs"] if s["begin"] == begin and s["find"] == find]


def check_positions(redis, table):
    """b: key positions are COMMAND's, and key commands are routed by them."""
    bad = []
    for n, t in sorted(table.items()):
        r = redis.get(n)
        if r is None:
            continue
        kind, here = t["kind"], (t["first"], t["last"], t["step"])
        want = (r["first"], r["last"], r["step"])
        if kind in FIXED_KINDS and "geo_store" in t["flags"]:
            # `last` is where STORE / STOREDIST are looked for from.
            starts = {int(s["begin_spec"]["startfrom"]) for s in spec_of(r, "keyword", "range")}
            if t["first"] != r["first"] or starts != {t["last"]}:
                bad.append("%s: key %d, options from %d; COMMAND: key %d, STORE/STOREDIST "
                           "from %s" % (n, t["first"], t["last"], r["first"], starts))
        elif kind in FIXED_KINDS and here != want and n not in POSITION_EXCEPTIONS:
            bad.append("%s: keys at first/last/step %s, COMMAND says %s" % (n, here, want))
        if kind == "CK_KEY" and "store_option" in t["flags"] and not \
                spec_of(r, "unknown", "unknown"):
            bad.append("%s: a STORE option the key specs do not have" % n)
        if kind == "CK_NUMKEYS":
            keynum = spec_of(r, "index", "keynum")
            dest = [s for s in spec_of(r, "index", "range") if s["begin_spec"]["index"] == 1]
            if len(keynum) != 1:
                bad.append("%s: numkeys, but COMMAND's key specs have %d keynum specs" %
                           (n, len(keynum)))
            else:
                s = keynum[0]
                at = s["begin_spec"]["index"] + s["find_spec"]["keynumidx"]
                if (at, s["find_spec"]["firstkey"], s["find_spec"]["keystep"]) != \
                        (t["first"], 1, 1):
                    bad.append("%s: numkeys at %d, keys right after it; COMMAND: %r" %
                               (n, t["first"], s))
            if bool(dest) != ("dest" in t["flags"]):
                bad.append("%s: destination key at 1: table %s, COMMAND %s" %
                           (n, "dest" in t["flags"], bool(dest)))
            if len(r["specs"]) != len(keynum) + len(dest):
                bad.append("%s: COMMAND has key specs the table does not read: %r" %
                           (n, r["specs"]))
        streams = [s for s in spec_of(r, "keyword", "range")
                   if s["begin_spec"]["keyword"] == "STREAMS"]
        if (kind == "CK_XREAD") != bool(streams):
            bad.append("%s: routed as %s; COMMAND's STREAMS key spec: %r" % (n, kind, streams))
        elif streams and int(streams[0]["begin_spec"]["startfrom"]) != t["first"]:
            bad.append("%s: options read from %d, COMMAND's STREAMS search from %s" %
                       (n, t["first"], streams[0]["begin_spec"]["startfrom"]))
        has_keys = bool(r["specs"]) or r["first"] > 0
        if has_keys and kind not in KEY_KINDS | {"CK_REFUSED"} and n not in KEYS_EXCEPTIONS:
            bad.append("%s: COMMAND says it has keys; the table routes it as %s" % (n, kind))
        if kind in KEY_KINDS and not has_keys and n not in POSITION_EXCEPTIONS:
            bad.append("%s: routed by keys (%s); COMMAND lists none" % (n, kind))
    return bad


def blocks_here(t):
    """Runs on the client's own server connection (XREAD: with BLOCK)."""
    return "blocking" in t["flags"] or t["kind"] == "CK_XREAD"


def check_blocking(redis, table):
    """c: what may block is not run on a shared server connection."""
    bad = []
    for n, r in sorted(redis.items()):
        t = table.get(n)
        if t is None or t["kind"] == "CK_REFUSED":
            continue
        if "blocking" in r["flags"] and not blocks_here(t) and t["kind"] != "CK_WAIT":
            bad.append("%s: COMMAND flags it blocking; the table runs it on a shared "
                       "connection (%s, flags %s)" % (n, t["kind"], sorted(t["flags"])))
        if blocks_here(t) and "blocking" not in r["flags"]:
            bad.append("%s: held on the client's own connection, but COMMAND does not flag "
                       "it blocking" % n)
    return bad


def check_readonly(redis, table):
    """c: what a replica may answer (CMD_READONLY, for read_from) is what
    COMMAND flags readonly, no more and no less."""
    bad = []
    for n, r in sorted(redis.items()):
        t = table.get(n)
        if t is None or t["kind"] == "CK_REFUSED":
            continue
        if ("readonly" in r["flags"]) != ("readonly" in t["flags"]):
            bad.append("%s: COMMAND %s it readonly, the table %s" % (
                n, "flags" if "readonly" in r["flags"] else "does not flag",
                "does" if "readonly" in t["flags"] else "does not"))
    return bad


def check_connection_state(redis, table):
    """c: the state of a client's connection stays off shared server connections."""
    bad = []
    for n, r in sorted(redis.items()):
        t = table.get(n)
        if t is None or t["kind"] in ("CK_REFUSED", "CK_SUBCMD") or \
                n.split("|")[0] in CONNECTION_EXCEPTIONS:
            continue
        if "@connection" in r["acl"] and t["kind"] not in LOCAL_KINDS | HELD_KINDS | \
                {"CK_WAIT"}:
            bad.append("%s: about the client's connection (@connection); the table sends "
                       "it on as %s" % (n, t["kind"]))
    return bad


def check_writes(redis, table):
    """c: a write goes to its keys' server or to every server, never to any one."""
    bad = []
    for n, r in sorted(redis.items()):
        t = table.get(n)
        if t is None or t["kind"] == "CK_REFUSED":
            continue
        if {"write", "may_replicate"} & r["flags"] and \
                t["kind"] not in KEY_KINDS | FANOUT_KINDS - {"CK_RANDOM", "CK_SCAN"}:
            bad.append("%s: COMMAND flags it %s; the table routes it as %s" %
                       (n, "/".join(sorted({"write", "may_replicate"} & r["flags"])),
                        t["kind"]))
    return bad


def check_policies(redis, table):
    """d: COMMAND's tips for every shard, and how replies are merged."""
    bad = []
    for n, r in sorted(redis.items()):
        t = table.get(n)
        if t is None or t["kind"] == "CK_REFUSED" or n in POLICY_EXCEPTIONS:
            continue
        kind = t["kind"]
        local = kind not in FANOUT_KINDS | KEY_KINDS | {"CK_ONE", "CK_SUBCMD"}
        request = r["tips"].get("request_policy")
        if request in ("all_shards", "all_nodes") and kind not in FANOUT_KINDS and not local:
            bad.append("%s: COMMAND's request_policy is %s; the table routes it as %s" %
                       (n, request, kind))
        response = r["tips"].get("response_policy")
        if response in RESPONSE_KINDS and kind in FANOUT_KINDS | SPLIT_KINDS and \
                kind not in RESPONSE_KINDS[response]:
            bad.append("%s: COMMAND's response_policy is %s; the table merges by %s" %
                       (n, response, kind))
    return bad


def admin_served(redis, table):
    """Informational: what redis calls admin or dangerous, served as usual."""
    out = []
    for n, r in sorted(redis.items()):
        t = table.get(n)
        if t is None or t["kind"] == "CK_REFUSED" or "admin" in t["flags"]:
            continue
        why = sorted(({"admin"} & r["flags"]) | ({"@dangerous"} & r["acl"]))
        if why:
            out.append("%s (%s, %s)" % (n, "/".join(why), t["kind"]))
    return out


def proxy_own():
    """tools/acl_categories.py's PROXY_OWN: name -> its categories."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import acl_categories  # noqa: E402
    return {n: {"@" + c for c in cats} for n, (cats, _) in acl_categories.PROXY_OWN.items()}


def check_acl(redis, table):
    """g: each entry's ACL categories are COMMAND's (the proxy's own:
    PROXY_OWN's), and only COMMAND's no_auth commands pass every user."""
    bad = []
    own = proxy_own()
    for n, t in sorted(table.items()):
        want = redis[n]["acl"] if n in redis else own.get(n)
        if want is None:
            bad.append("%s: not in COMMAND nor in tools/acl_categories.py's PROXY_OWN" % n)
        elif t["acl"] != want:
            bad.append("%s: categories %s, %s says %s" % (
                n, " ".join(sorted(t["acl"])) or "none",
                "COMMAND" if n in redis else "PROXY_OWN", " ".join(sorted(want))))
        if n in redis and ("no_auth" in redis[n]["flags"]) != (t["kind"] in NO_AUTH_KINDS):
            bad.append("%s: COMMAND %s it no_auth; acl_check %s it to every user" % (
                n, "flags" if "no_auth" in redis[n]["flags"] else "does not flag",
                "allows" if t["kind"] in NO_AUTH_KINDS else "does not allow"))
    return bad


def check_acl_header(port):
    """g: proxy/command_acl.h is what tools/acl_categories.py writes from
    this redis-server."""
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "acl_categories.py"),
                        "--check", "--port", str(port)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    check(p.returncode == 0, "tools/acl_categories.py --check:\n%s" % p.stdout.decode())
    print("ok proxy/command_acl.h is tools/acl_categories.py's output for this redis-server")


CHECKS = [check_coverage, check_positions, check_blocking, check_readonly,
          check_connection_state, check_writes, check_policies, check_acl]


def self_test(redis, table):
    """Every check must notice a broken table."""
    def broken(change):
        t = copy.deepcopy(table)
        change(t)
        return t

    def set_field(name, field, value):
        return lambda t: t[name].__setitem__(field, value)

    cases = [
        ("GET removed", check_coverage, lambda t: t.pop("get")),
        ("CONFIG GET removed", check_coverage, lambda t: t.pop("config|get")),
        ("CLUSTER removed", check_coverage, lambda t: t.pop("cluster")),
        ("an entry redis lacks", check_coverage,
         lambda t: t.__setitem__("nosuch", dict(t["get"]))),
        ("LPUSH's key at 2", check_positions, set_field("lpush", "first", 2)),
        ("BLPOP's last key -1", check_positions, set_field("blpop", "last", -1)),
        ("ZUNIONSTORE without dest", check_positions,
         set_field("zunionstore", "flags", set())),
        ("EVAL's numkeys at 1", check_positions, set_field("eval", "first", 1)),
        ("MEMORY USAGE routed to any server", check_positions,
         set_field("memory|usage", "kind", "CK_ONE")),
        ("GEORADIUS options from 5", check_positions, set_field("georadius", "last", 5)),
        ("BLPOP not held", check_blocking, set_field("blpop", "flags", set())),
        ("GET held", check_blocking, set_field("get", "flags", {"blocking"})),
        ("GET not readonly", check_readonly, set_field("get", "flags", set())),
        ("SET readonly", check_readonly, set_field("set", "flags", {"readonly"})),
        ("CLIENT SETNAME sent to a server", check_connection_state,
         set_field("client|setname", "kind", "CK_ONE")),
        ("READONLY sent to every server", check_connection_state,
         set_field("readonly", "kind", "CK_ALL_OK")),
        ("FUNCTION LOAD to any one server", check_writes,
         set_field("function|load", "kind", "CK_ONE")),
        ("DBSIZE from one server", check_policies, set_field("dbsize", "kind", "CK_ONE")),
        ("SCRIPT EXISTS merged as OK", check_policies,
         set_field("script|exists", "kind", "CK_ALL_OK")),
        ("GET without @read", check_acl, set_field("get", "acl", {"@string", "@fast"})),
        ("SET in @read too", check_acl,
         set_field("set", "acl", {"@write", "@string", "@slow", "@read"})),
        ("PROXY RELOAD not @dangerous", check_acl,
         set_field("proxy|reload", "acl", {"@admin", "@slow"})),
        ("PING let past every user", check_acl, set_field("ping", "kind", "CK_AUTH")),
    ]
    for what, fn, change in cases:
        check(fn(redis, broken(change)), "self-test: %s must notice: %s" % (fn.__name__, what))
    print("ok the checks notice a broken table (%d cases)" % len(cases))


# ---- the running proxy --------------------------------------------------------

def call_all(port, commands):
    """The commands pipelined on one connection, and their replies."""
    c = Conn(port)
    got = c.deep_pipeline(commands)
    c.close()
    return got


def check_live(env, redis_port, redis, table):
    locked, admin_off = free_port(), free_port()
    conf = ("locked:\n  listen: 127.0.0.1:%d\n  redis: true\n  redis_auth: s3cret\n"
            "  servers:\n   - 127.0.0.1:%d:1\n"
            "admin_off:\n  listen: 127.0.0.1:%d\n  redis: true\n  refuse_admin_commands: true\n"
            "  servers:\n   - 127.0.0.1:%d:1\n" % (locked, redis_port, admin_off, redis_port))
    env.proxy(BIN, conf, [locked, admin_off])

    # Every name, upper case, before AUTH: a name the proxy finds gets NOAUTH
    # (nothing runs), one it does not "unknown command" / "unknown subcommand".
    answered_by_proxy = {n for n, t in table.items() if t["kind"] in ("CK_AUTH", "CK_HELLO",
                                                                       "CK_QUIT")}
    names = sorted((set(redis) | set(table)) - answered_by_proxy)
    got = call_all(locked, [n.upper().split("|") for n in names])
    bad = []
    for n, g in zip(names, got):
        # A container alone is short of its subcommand, whoever asks.
        want = ("ERR wrong number of arguments for '%s' command" % n
                if table.get(n, {}).get("kind") == "CK_SUBCMD"
                else "NOAUTH Authentication required.")
        if g != ("err", want):
            bad.append("%s: %r" % (n, g))
    check(not bad, "names the proxy does not find:\n  " + "\n  ".join(bad))
    print("ok the proxy finds all %d names (commands, subcommands) in any case" % len(names))

    # Refused entries answer their reason; a refused container also for its
    # subcommands, and DEBUG for every subcommand but OBJECT.
    cmds, wants = [], []
    for n, t in sorted(table.items()):
        if t["kind"] == "CK_REFUSED":
            cmds.append(n.upper().split("|"))
            wants.append("ERR the proxy refuses '%s': %s" % (n, t["why"]))
        elif t["kind"] == "CK_SUBCMD" and t["why"]:
            cmds.append([n.upper(), "SLEEP", "0"])
            wants.append("ERR the proxy refuses '%s': %s" % (n, t["why"]))
    for n in sorted(redis):
        if n not in table and covered(n, table):
            container = n.split("|")[0]
            cmds.append(n.upper().split("|"))
            wants.append("ERR the proxy refuses '%s': %s" % (container, table[container]["why"]))
    got = call_all(admin_off, cmds)
    for cmd, want, g in zip(cmds, wants, got):
        check_eq(g, ("err", want), " ".join(cmd))
    print("ok %d refused commands and subcommands answer their reason" % len(cmds))

    admin = sorted(n for n, t in table.items() if "admin" in t["flags"])
    got = call_all(admin_off, [n.upper().split("|") for n in admin])
    for n, g in zip(admin, got):
        check_eq(g, ("err", "ERR the proxy refuses '%s': the pool refuses administrative "
                            "commands (refuse_admin_commands)" % n), n)
    print("ok refuse_admin_commands refuses the %d admin entries" % len(admin))

    # refuse_admin_commands' documentation names them: `FLUSHALL`, `CONFIG SET`...
    rows = [ln for ln in run_proxy("--config-keys").splitlines()
            if ln.startswith("| `refuse_admin_commands` |")]
    check_eq(len(rows), 1, "--config-keys has a refuse_admin_commands row")
    meaning = rows[0].rstrip(" |").rsplit(" | ", 1)[-1]
    documented = sorted(w.lower().replace(" ", "|") for w in meaning.split("`")[1::2])
    check_eq(documented, admin, "the commands refuse_admin_commands' documentation names "
             "(proxy/config.c) are the table's admin entries")
    print("ok refuse_admin_commands' documentation names exactly them")


# ---- docs/proxy.md ----------------------------------------------------------

def check_docs(table):
    md = run_proxy("--commands")
    lines = md.splitlines()
    check_eq(lines[0], "| command | routed to | keys (argument positions) |", "header")
    rows = [ln.split("`")[1] for ln in lines[2:]]
    check_eq(rows, [n.upper().replace("|", " ") for n in table],
             "--commands and --commands=tsv: the same walk")
    with open(DOC, encoding="utf-8") as f:
        whole = f.read()
    check(whole.count(BEGIN) == 1 and whole.count(END) == 1,
          "docs/proxy.md has the markers once each: %r and %r" % (BEGIN, END))
    doc = whole[whole.index(BEGIN) + len(BEGIN):whole.index(END)]
    if doc != md:
        diff = "".join(difflib.unified_diff(doc.splitlines(True), md.splitlines(True),
                                            "docs/proxy.md", "chash-proxy --commands"))
        raise AssertionError("docs/proxy.md's command list differs from `chash-proxy "
                             "--commands`; paste the output between the markers:\n" + diff)
    p = subprocess.run([BIN, "--help"], stdout=subprocess.PIPE, timeout=10)
    check("--commands" in p.stdout.decode(), "--help names --commands")
    p = subprocess.run([BIN, "--commands=json"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    check_eq(p.returncode, 2, "--commands=json: a usage error")
    print("ok docs/proxy.md's command list is the output of --commands (%d rows)" % len(rows))


def main():
    table = proxy_table()
    check_docs(table)
    env = Env()
    try:
        port, redis, version = redis_commands(env)
        print("ok COMMAND of %s: %d commands and subcommands; the table: %d" %
              (version, len(redis), len(table)))
        self_test(redis, table)
        check_acl_header(port)
        failed = []
        for fn in CHECKS:
            bad = fn(redis, table)
            if bad:
                failed.append("%s:\n  %s" % (fn.__doc__.strip().rstrip("."), "\n  ".join(bad)))
            else:
                print("ok %s" % fn.__doc__.strip())
        # The table is redis-server 7.0's: another version's additions show
        # here as commands the table lacks.
        check(not failed, "the table disagrees with COMMAND of %s (the table is 7.0's):\n%s"
              % (version, "\n".join(failed)))
        served = admin_served(redis, table)
        print("note: admin or dangerous in redis, served without refuse_admin_commands "
              "(%d): %s" % (len(served), ", ".join(served)))
        check_live(env, port, redis, table)
        env.check_proxies()
    finally:
        env.close()
    print("%d checks passed" % harness.CHECKS)


if __name__ == "__main__":
    main()
