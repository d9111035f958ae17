#!/usr/bin/env python3
"""test_acl.py CHASH_PROXY - users in Redis's ACL language (issue 17, parts 3
and 4's admin surface), with real redis-servers.

The pool's servers have a password of their own (requirepass, the pool's
redis_auth); the clients' users are `users:`. A reference redis-server (no
proxy) is given the same users with ACL SETUSER, and every case whose
semantics are Redis's runs on both, side by side, as the same user: the
replies must be identical, refusals word for word (NOPERM for a command, a
key, a channel; WRONGPASS; SORT's BY and GET; EXECABORT after a refused
command in MULTI). Then what is the proxy's own: a pool without a default
user (NOAUTH until AUTH), the limits before AUTH, scripts for restricted
users, PROXY for admins only (and refuse_admin_commands unchanged), ACL
WHOAMI/CAT, the glob of ~patterns against redis-server's on edge cases, a
pool without users (redis_auth as it always was), reloads that change,
switch off, remove and add users under a bystander that never sees an
error, and at the end of each case a grep of every log line, stats page
and proxy answer for the test passwords and their SHA-256 digests.
"""
import hashlib
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Closed, Conn, SetGetBystander, check, check_eq, enc,  # noqa: E402
                     free_port, free_ports, proxy_binary, raw_stats, run, stats_json)

BIN = proxy_binary()

PW = {"alice": "alice-S3cret-pw", "carol": "carol-Hashed-pw9", "dave": "dave-Off-pw77",
      "root": "root-All-pw123", "srt": "srt-Sort-pw321", "ops": "ops-Adm1n-pw44",
      "loc": "loc-Only-pw66", "scr": "scr-Script-pw8", "bob": "bob-Gone-pw55",
      "srv": "servers-Pw-0042", "newdave": "dave-New-pw78"}


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


SECRETS = sorted(set(PW.values()) | {sha(p) for p in PW.values()})

# Rules redis-server takes as they are: the proxy's users and the reference's.
SHARED = [
    "alice on >{alice} ~app:* ~shared:* &news.* +@read +@write +@transaction +@connection "
    "+@pubsub -@dangerous",
    "carol on #%s ~c:* +get +set +mget +ping" % sha(PW["carol"]),
    "dave off >{dave} allkeys allchannels +@all",
    "root on >{root} allkeys allchannels +@all",
    "srt on >{srt} ~s:* +sort +sort_ro +rpush +set",
    "default on nopass ~pub:* &* +@read +ping +acl|whoami",
]
# The proxy's own: PROXY's subcommands, and a script for a restricted user.
PROXY_ONLY = [
    "ops on >{ops} +@admin",
    "loc on >{loc} +proxy|locate +ping",
    "scr on >{scr} ~app:* &* +@all",
]
# ~patterns whose glob redis-server and the proxy must agree on: one user
# each (g0, g1...), nopass, +get.
GLOBS = ["app:*", "*:*", "a?c", "[abc]x", "[^abc]x", "[a-c]x", "[c-a]x", "h[ae]llo", "\\*x",
         "a\\", "[", "[a", "[^", "[]]", "[a-]", "[-a]", "[\\]]", "*?", "**", "", "a*b*c",
         "*\\*", "?*?"]
GLOB_KEYS = ["app:1", "app:", "a:b", "abc", "ac", "axc", "bx", "dx", "-", "]", "[", "a", "a\\",
             "*x", "ax", "hello", "hallo", "hillo", "", "x", "abxbxc", "ab*", "ab"]


def rules(users):
    return [u.format(**PW) for u in users]


def yaml_users(users):
    """users: as YAML single-quoted strings (backslashes taken as they are)."""
    return "".join("   - '%s'\n" % u.replace("'", "''") for u in users)


def glob_users():
    return ["g%d on nopass ~%s +get" % (i, p) for i, p in enumerate(GLOBS)]


def is_err(reply):
    return isinstance(reply, tuple) and reply[0] == "err"


def authed(port, user):
    c = Conn(port)
    if user:
        check_eq(c.call("AUTH", user, PW[user]), b"+OK", "AUTH %s on %d" % (user, port))
    return c


def no_secrets(env, texts, what):
    """Not one test password nor digest in the proxy's logs or in `texts`
    (stats pages, answers...). The configuration files hold them by design:
    they are not read."""
    seen = list(texts)
    for name in sorted(os.listdir(env.dir)):
        if name.startswith("proxy-") and name.endswith(".log"):
            with open(os.path.join(env.dir, name), "rb") as f:
                seen.append(f.read())
    blob = b"\n".join(t if isinstance(t, bytes) else repr(t).encode() for t in seen)
    for s in SECRETS:
        check(s.encode() not in blob, "%s: a secret (%s...) in the proxy's output" %
              (what, s[:6]))
    return len(blob)


def stats_pages(stats):
    return [raw_stats(stats), raw_stats(stats, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")]


class Setup:
    """Two pool servers with a password, a reference redis-server with the
    same users, and a proxy: pool `cmp` (one server: replies compare with
    the reference's), `nodef` (two servers, no default user), `plain`
    (redis_auth only, as before users existed), `locked`
    (refuse_admin_commands)."""

    def __init__(self, env, workers=2):
        self.env = env
        self.servers = []
        for _ in range(2):
            port, _ = env.redis(["--requirepass", PW["srv"]])
            self.servers.append(port)
        self.ref, _ = env.redis()
        admin = Conn(self.ref)
        users = rules(SHARED) + glob_users()
        # default last: the admin connection is default until then.
        for u in sorted(users, key=lambda u: u.startswith("default ")):
            name, rest = u.split(" ", 1)
            check_eq(admin.call("ACL", "SETUSER", name, "reset", *rest.split(" ")), b"+OK",
                     "reference ACL SETUSER %s" % name)
        admin.close()
        self.cmp, self.nodef, self.plain, self.locked = free_ports(4)
        self.stats = free_port()
        one = "   - 127.0.0.1:%d:1\n" % self.servers[0]
        two = one + "   - 127.0.0.1:%d:1\n" % self.servers[1]
        base = "  redis: true\n  redis_auth: %s\n" % PW["srv"]
        users = rules(SHARED + PROXY_ONLY)
        nodef = [u for u in users if not u.startswith("default ")]
        self.conf = (
            "cmp:\n  listen: 127.0.0.1:%d\n%s  servers:\n%s  users:\n%s" %
            (self.cmp, base, one, yaml_users(users + glob_users())) +
            "nodef:\n  listen: 127.0.0.1:%d\n%s  servers:\n%s  users:\n%s" %
            (self.nodef, base, two, yaml_users(nodef)) +
            "plain:\n  listen: 127.0.0.1:%d\n%s  servers:\n%s" % (self.plain, base, two) +
            "locked:\n  listen: 127.0.0.1:%d\n%s  refuse_admin_commands: true\n  servers:\n%s"
            "  users:\n%s" % (self.locked, base, one, yaml_users(nodef)))
        self.proxy = env.proxy(BIN, self.conf, [self.cmp, self.nodef, self.plain, self.locked],
                               workers=workers, stats_port=self.stats, extra=["-v", "11"])
        self.answers = []  # what the proxy said, for the grep

    def flush(self):
        for port in self.servers:
            c = Conn(port)
            check_eq(c.call("AUTH", PW["srv"]), b"+OK", "AUTH on a pool server")
            check_eq(c.call("FLUSHALL"), b"+OK", "FLUSHALL a pool server")
            c.close()
        c = authed(self.ref, "root")
        check_eq(c.call("FLUSHALL"), b"+OK", "FLUSHALL the reference")
        c.close()

    def side_by_side(self, user, cmds, what):
        """cmds as `user` (None: a client that did not AUTH) through pool
        cmp and on the reference: the same replies, one by one."""
        px, ref = authed(self.cmp, user), authed(self.ref, user)
        for cmd in cmds:
            got, want = px.call(*cmd), ref.call(*cmd)
            self.answers.append(got)
            check_eq(got, want, "%s: %s as %s through the proxy / on redis-server" %
                     (what, " ".join(str(a) for a in cmd), user or "nobody"))
        px.close()
        ref.close()

    def grep(self, what, texts=()):
        """The secrets grep; it must see a secret planted in what it reads."""
        pages = stats_pages(self.stats)
        try:
            no_secrets(self.env, [b"x" + PW["alice"].encode()], "self-test")
        except AssertionError:
            pass
        else:
            raise AssertionError("the secrets grep missed a planted password")
        size = no_secrets(self.env, list(texts) + self.answers + pages, what)
        print("  no password nor digest in %d bytes of logs, stats pages and answers" % size)
        return size


NOPERM_CMD = "NOPERM this user has no permissions to run the '%s' command"
NOPERM_KEY = "NOPERM this user has no permissions to access one of the keys used as arguments"
NOPERM_CHANNEL = ("NOPERM this user has no permissions to access one of the channels used "
                  "as arguments")
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


def test_side_by_side(env):
    """Refusals and results as redis-server gives them, user by user."""
    s = Setup(env)
    s.flush()
    s.side_by_side("alice", [
        ("GET", "app:1"), ("SET", "app:1", "v"), ("GET", "app:1"), ("GET", "other"),
        ("SET", "other", "v"), ("MSET", "app:1", "a", "app:2", "b"),
        ("MSET", "app:1", "a", "other", "b"), ("MGET", "app:1", "app:2"),
        ("MGET", "app:1", "other"), ("DEL", "app:2"), ("EXISTS", "app:1", "shared:1"),
        ("FLUSHALL",), ("CONFIG", "GET", "maxmemory"), ("KEYS", "*"),
        ("RENAME", "app:1", "shared:1"), ("RENAME", "shared:1", "other"),
        ("HSET", "app:h", "f", "v"), ("HGET", "app:h", "f"), ("HGET", "other", "f"),
        ("ZADD", "other", 1, "a"), ("OBJECT", "ENCODING", "other"), ("EXPIRE", "app:h", 100),
        ("BLPOP", "other", "0.1"), ("BLPOP", "app:q", "0.1"), ("WATCH", "other"),
        ("WATCH", "app:1"), ("UNWATCH",), ("PING",), ("ACL", "WHOAMI"), ("EVAL", "return 1", 0),
        ("ZUNIONSTORE", "app:d", 2, "app:a", "app:b"), ("ZUNIONSTORE", "x", 1, "app:a"),
        ("LMPOP", 2, "app:l", "other", "LEFT"), ("XREAD", "STREAMS", "app:s", "other", 0, 0),
        # inside MULTI: refused at queue time, and EXEC then aborts
        ("MULTI",), ("SET", "app:1", "x"), ("FLUSHALL",), ("GET", "other"), ("EXEC",),
        ("GET", "app:1"),
        # channels: &news.*; PSUBSCRIBE's pattern must be one of them, as is
        ("PUBLISH", "news.1", "m"), ("PUBLISH", "sport", "m"), ("SPUBLISH", "news.1", "m"),
        ("SUBSCRIBE", "sport"), ("SSUBSCRIBE", "sport"), ("PSUBSCRIBE", "news.1*"),
        ("PSUBSCRIBE", "*"), ("SUBSCRIBE", "news.a", "sport"), ("PSUBSCRIBE", "news.*"),
    ], "alice")
    s.side_by_side("carol", [
        ("GET", "c:1"), ("SET", "c:1", "v"), ("MGET", "c:1", "c:2"), ("GET", "app:1"),
        ("DEL", "c:1"), ("PING",), ("SET", "app:1", "v"),
    ], "carol (#digest)")
    s.side_by_side("srt", [
        ("RPUSH", "s:l", 3, 1, 2), ("SET", "w_1", "x"), ("SORT", "s:l"),
        ("SORT", "s:l", "BY", "w_*"), ("SORT", "s:l", "BY", "nosort"),
        ("SORT", "s:l", "GET", "#"), ("SORT", "s:l", "BY", "w_*", "GET", "#"),
        ("SORT_RO", "s:l", "GET", "#"), ("SORT", "s:l", "NOSUCH", "GET", "#"),
        ("SORT", "s:l", "STORE", "s:dst"), ("SORT", "s:l", "STORE", "other"),
        ("SORT", "other"),
    ], "srt (SORT's options)")
    s.side_by_side(None, [
        ("GET", "pub:1"), ("GET", "x"), ("SET", "pub:1", "v"), ("ACL", "WHOAMI"), ("PING",),
        ("AUTH", "anything"), ("AUTH", "dave", PW["dave"]), ("AUTH", "zed", "x"),
        ("AUTH", "alice", "wrong"), ("AUTH", "alice", PW["alice"] + "x"),
        ("AUTH", "alice", PW["alice"][:-1]), ("AUTH", "alice", PW["alice"], "x"),
        ("HELLO", "2", "AUTH", "alice", "wrong"), ("HELLO", "2", "AUTH", "dave", PW["dave"]),
        ("AUTH", "carol", sha(PW["carol"])),  # the digest is no password
        ("AUTH", "carol", PW["carol"]), ("GET", "c:1"),
        # HELLO's options in order, as redis-server 7.0: AUTH holds though a
        # later option is wrong
        ("AUTH", "default", "x"), ("HELLO", "2", "AUTH", "carol", PW["carol"], "BADOPT"),
        ("GET", "app:1"), ("HELLO", "2", "AUTH", "carol", "bad", "SETNAME", "n"),
        ("AUTH", "root", PW["root"]),
        ("ACL", "WHOAMI"), ("ACL", "CAT"), ("ACL", "CAT", "nosuch"),
        ("ACL", "WHOAMI", "x"), ("ACL", "CAT", "a", "b"),
    ], "the default user, AUTH")
    # ~patterns: Redis's glob, case by case (g0... are nopass).
    px, ref = Conn(s.cmp), Conn(s.ref)
    for i, pattern in enumerate(GLOBS):
        cmds = [("AUTH", "g%d" % i, "x")] + [("GET", k) for k in GLOB_KEYS]
        got, want = px.pipeline(cmds), ref.pipeline(cmds)
        for k, g, w in zip(GLOB_KEYS, got[1:], want[1:]):
            check_eq(is_err(g), is_err(w), "~%s against %r: NOPERM through the proxy / "
                     "redis-server" % (pattern, k))
            if is_err(g):
                check_eq(g, ("err", NOPERM_KEY), "~%s against %r" % (pattern, k))
    print("  %d patterns x %d keys: the proxy's glob is redis-server's" %
          (len(GLOBS), len(GLOB_KEYS)))
    # HELLO 2 AUTH: the proxy's own HELLO reply, then the user's rules.
    c = Conn(s.cmp)
    hello = c.call("HELLO", "2", "AUTH", "alice", PW["alice"])
    check(isinstance(hello, list) and hello[:2] == [b"server", b"chash-proxy"],
          "HELLO 2 AUTH alice: %r" % (hello,))
    check_eq(c.call("GET", "other"), ("err", NOPERM_KEY), "alice's rules after HELLO AUTH")
    check_eq(c.call("HELLO", "3", "AUTH", "alice", PW["alice"])[1][:7], "NOPROTO", "HELLO 3")
    # ACL CAT <category>: Redis's lists, where the table has the same entries.
    root = authed(s.cmp, "root")
    ref = authed(s.ref, "root")
    for cat in ("read", "write", "admin", "dangerous", "pubsub", "connection", "scripting"):
        mine = {x.decode() for x in root.call("ACL", "CAT", cat)}
        theirs = {x.decode() for x in ref.call("ACL", "CAT", cat)}
        own = {n for n in mine if n.startswith("proxy") or n in ("debug|object",
                                                                  "client|no-touch")}
        whole = {n for n in theirs if n.split("|")[0] in ("module",)}  # refused whole
        check_eq(mine - own, theirs - whole - {n.split("|")[0] for n in whole} | (
            {"module"} & mine), "ACL CAT %s" % cat)
    print("ok side by side with redis-server: refusals word for word, AUTH, HELLO, MULTI, "
          "SORT, channels, ACL CAT")
    s.grep("side by side")


def test_proxy_own(env):
    """NOAUTH without a default user, limits before AUTH, scripts, PROXY,
    refuse_admin_commands, pools without users, CLIENT LIST (one worker:
    CLIENT LIST shows its worker's clients)."""
    s = Setup(env, workers=1)
    s.flush()
    ans = s.answers
    # No default user: nothing but AUTH, HELLO and QUIT before AUTH.
    c = Conn(s.nodef)
    for cmd in (("GET", "x"), ("PING",), ("ACL", "WHOAMI"), ("PROXY", "RING"), ("MULTI",)):
        check_eq(c.call(*cmd), ("err", "NOAUTH Authentication required."), "nodef %s" % cmd[0])
    got = c.call("HELLO", "2")
    check(is_err(got) and got[1].startswith("NOAUTH HELLO must be called"), "HELLO: %r" % (got,))
    check_eq(c.call("AUTH", "x"), ("err", WRONGPASS), "AUTH pw: there is no default user")
    check_eq(c.call("AUTH", "default", "x"), ("err", WRONGPASS), "AUTH default: none")
    check_eq(c.call("AUTH", "alice", PW["alice"]), b"+OK", "AUTH alice")
    check_eq(c.call("SET", "app:{t}1", "v"), b"+OK", "alice SET on nodef")
    check_eq(c.call("MGET", "app:1", "app:2", "app:3", "app:4"), [None] * 4, "MGET split")
    check_eq(c.call("MGET", "app:1", "other"), ("err", NOPERM_KEY), "split MGET, a bad key")
    check_eq(c.call("RENAME", "app:1", "app:2")[0], "err", "CROSSSLOT or no such key")
    check_eq(c.call("CONFIG", "GET", "x"), ("err", NOPERM_CMD % "config|get"), "nodef CONFIG")
    # Before AUTH, a client sends what Redis takes from an unauthenticated
    # one: a 20 KB password is refused by the parser (UNAUTH_MAX_BULK), and
    # the connection closed; after AUTH, the pool's limits.
    c = Conn(s.nodef)
    c.send(enc("AUTH", "alice", "x" * 20000))
    got = c.reply()
    check(is_err(got), "a 20 KB password before AUTH: %r" % (got,))
    check(c.is_closed(), "closed after it")
    c = Conn(s.nodef)
    check_eq(c.call("AUTH", "alice", "x" * 16000), ("err", WRONGPASS), "16 KB password: hashed")
    check_eq(c.call("AUTH", "alice", PW["alice"]), b"+OK", "AUTH after a wrong one")
    check_eq(c.call("SET", "app:big", "v" * 100000), b"+OK", "100 KB after AUTH")
    # Every refused AUTH is counted (a guesser shows in the stats), and the
    # log says so without what was tried.
    got = stats_json(s.stats)["nodef"]["auth_failed"]
    check(got >= 3, "stats: auth_failed %d after 3 wrong passwords" % got)
    # Scripts: only for users with every command, key and channel.
    c = authed(s.cmp, "scr")
    got = c.call("EVAL", "return redis.call('GET', KEYS[1])", 1, "app:1")
    ans.append(got)
    check(is_err(got) and got[1].startswith("NOPERM this user may not run 'eval' through the "
                                            "proxy"), "scr EVAL: %r" % (got,))
    check_eq(c.call("FCALL", "f", 1, "app:1")[1][:6], "NOPERM", "scr FCALL")
    check_eq(c.call("SCRIPT", "LOAD", "return 1"), b"e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
             "SCRIPT LOAD runs nothing")
    c = authed(s.cmp, "root")
    check_eq(c.call("SET", "app:1", "v1"), b"+OK", "root SET")
    check_eq(c.call("EVAL", "return redis.call('GET', KEYS[1])", 1, "app:1"), b"v1",
             "root's EVAL")
    # PROXY: @admin (RELOAD also @dangerous), or granted by subcommand.
    for user in ("alice", "carol", "scr"):
        c = authed(s.cmp, user)
        for sub in ("RING", "LOCATE", "RELOAD", "HELP"):
            args = ("PROXY", sub, "k") if sub == "LOCATE" else ("PROXY", sub)
            want = NOPERM_CMD % ("proxy|" + sub.lower())
            if user == "scr":  # +@all: every PROXY subcommand
                check(not is_err(c.call(*args)) or sub == "RELOAD", "scr PROXY %s" % sub)
                continue
            check_eq(c.call(*args), ("err", want), "%s PROXY %s" % (user, sub))
    c = Conn(s.cmp)  # the default user
    check_eq(c.call("PROXY", "HELP"), ("err", NOPERM_CMD % "proxy|help"), "default PROXY")
    c = authed(s.cmp, "ops")
    ring = c.call("PROXY", "RING")
    ans.append(ring)
    check(isinstance(ring, list) and ring[0].startswith(b"pool cmp"), "ops PROXY RING")
    check(isinstance(c.call("PROXY", "LOCATE", "k"), list), "ops PROXY LOCATE")
    check(isinstance(c.call("PROXY", "HELP"), list), "ops PROXY HELP")
    check_eq(c.call("GET", "k"), ("err", NOPERM_CMD % "get"), "ops reads nothing")
    check_eq(c.call("PROXY", "NOPE")[1], "ERR unknown subcommand 'NOPE'. Try PROXY HELP.",
             "PROXY NOPE")
    c = authed(s.cmp, "loc")
    check(isinstance(c.call("PROXY", "LOCATE", "k"), list), "loc PROXY LOCATE")
    check_eq(c.call("PROXY", "RING"), ("err", NOPERM_CMD % "proxy|ring"), "loc PROXY RING")
    # refuse_admin_commands: as it was, after the users' rules.
    c = authed(s.locked, "root")
    check_eq(c.call("FLUSHALL"), ("err", "ERR the proxy refuses 'flushall': the pool refuses "
                                         "administrative commands (refuse_admin_commands)"),
             "root FLUSHALL in a locked pool")
    check(isinstance(c.call("PROXY", "RING"), list), "root PROXY RING in a locked pool")
    c = authed(s.locked, "alice")
    check_eq(c.call("FLUSHALL"), ("err", NOPERM_CMD % "flushall"), "alice FLUSHALL: NOPERM first")
    # ACL's other subcommands: refused with the reason; unknown ones as Redis.
    c = authed(s.cmp, "root")
    got = c.call("ACL", "SETUSER", "x", "on")
    check(is_err(got) and "users are its configuration" in got[1], "ACL SETUSER: %r" % (got,))
    check_eq(c.call("ACL", "NOPE"), ("err", "ERR unknown subcommand 'NOPE'. Try ACL HELP."),
             "ACL NOPE")
    check_eq(c.call("ACL", "WHOAMI"), b"root", "ACL WHOAMI")
    # CLIENT LIST: each client's user.
    other = authed(s.cmp, "alice")
    other.call("GET", "app:1")
    listing = c.call("CLIENT", "LIST").decode()
    ans.append(listing)
    users = {f.split("=", 1)[1] for line in listing.splitlines() for f in line.split()
             if f.startswith("user=")}
    check({"root", "alice"} <= users, "CLIENT LIST users: %s" % users)
    # A pool without users: redis_auth as it always was.
    c = Conn(s.plain)
    check_eq(c.call("GET", "x"), ("err", "NOAUTH Authentication required."), "plain: NOAUTH")
    check_eq(c.call("AUTH", "alice", PW["alice"]), ("err", WRONGPASS), "plain: no users")
    check_eq(c.call("AUTH", PW["srv"]), b"+OK", "plain: AUTH redis_auth")
    check_eq(c.call("ACL", "WHOAMI"), b"default", "plain: ACL WHOAMI")
    check(isinstance(c.call("PROXY", "RING"), list), "plain: PROXY for everyone")
    check_eq(c.call("FLUSHALL"), b"+OK", "plain: FLUSHALL")
    check("user=default" in c.call("CLIENT", "INFO").decode(), "plain: CLIENT INFO user")
    # The configuration's messages name a bad rule, never a password.
    bad = s.conf.replace("'alice on >", "'alice on ", 1)  # a password without its '>'
    path = env.write("bad.yml", bad)
    p = subprocess.run([BIN, "-t", "-c", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=10)
    ans.append(p.stdout)
    check_eq(p.returncode, 2, "-t on a bad users: rule")
    check(b"pool 'cmp': users: user 'alice': rule 2: not a rule" in p.stdout, p.stdout)
    print("ok NOAUTH, limits before AUTH, scripts, PROXY for admins, refuse_admin_commands, "
          "ACL, CLIENT LIST, a pool without users, -t")
    s.grep("the proxy's own")


def reload_conf(s, users_cmp):
    return s.conf.split("cmp:\n", 1)[0] + "cmp:\n" + s.conf.split("cmp:\n", 1)[1].split(
        "  users:\n", 1)[0] + "  users:\n" + yaml_users(users_cmp) + "nodef:" + \
        s.conf.split("nodef:", 1)[1]


def proxy_reload(s, text):
    """Writes the configuration and reloads it with PROXY RELOAD as root."""
    env = s.env
    env.write("proxy-%d.yml" % s.cmp, text)
    time.sleep(0.21)  # a reload every 200 ms at most
    c = authed(s.cmp, "root")
    got = c.call("PROXY", "RELOAD")
    c.close()
    s.answers.append(got)
    check(isinstance(got, list), "PROXY RELOAD: %r" % (got,))
    return [x.decode() for x in got]


def test_reload(env):
    """Users are configuration: a reload's changes reach clients already
    authenticated at their next command; a bystander never sees an error."""
    s = Setup(env, workers=2)
    s.flush()
    # The bystander is a user whose rules no reload here changes.
    keep = "keeper on >{root} ~by:* +@all".format(**PW)
    base = rules(SHARED + PROXY_ONLY) + [keep, "bob on >{bob} ~app:* +@all".format(**PW)]
    proxy_reload(s, reload_conf(s, base))

    class Bystander(SetGetBystander):
        def loop(self):
            check_eq(self.c.call("AUTH", "keeper", PW["root"]), b"+OK", "keeper AUTH")
            super().loop()

    by = Bystander(s.cmp, "acl")
    alice, bob, carol = authed(s.cmp, "alice"), authed(s.cmp, "bob"), authed(s.cmp, "carol")
    implicit = Conn(s.cmp)  # the default user, never authenticated
    check_eq(alice.call("SET", "app:1", "v"), b"+OK", "alice writes")
    check_eq(bob.call("GET", "app:1"), b"v", "bob reads")
    check_eq(carol.call("SET", "c:1", "v"), b"+OK", "carol writes")
    check_eq(implicit.call("GET", "pub:1"), None, "default reads pub:")
    # alice loses @write, bob is removed, carol switched off, dave added
    # (on, a new password), default may read everything now.
    changed = []
    for u in base:
        name = u.split(" ", 1)[0]
        if name == "alice":
            u = u.replace(" +@write", "")
        elif name == "carol":
            u = u.replace("carol on", "carol off")
        elif name == "dave":
            u = "dave on >{newdave} ~d:* +@all".format(**PW)
        elif name == "default":
            u = "default on nopass ~* +@read +ping +acl|whoami"
        if name != "bob":
            changed.append(u)
    plan = proxy_reload(s, reload_conf(s, changed))
    line = [x for x in plan if x.startswith("  users:")]
    check_eq(line, ["  users: alice changed, carol switched off, dave changed, default changed, "
                    "bob removed"], "the reload's users line: %r" % plan)
    # What a client sends once PROXY RELOAD has answered runs under the new
    # users, whichever worker serves it (client_is_full waits for its worker
    # to take the configuration).
    check_eq(alice.call("SET", "app:1", "w"), ("err", NOPERM_CMD % "set"),
             "alice's SET refused at her next command")
    check_eq(alice.call("GET", "app:1"), b"v", "alice still reads")
    lost = "NOAUTH user '%s' was removed or disabled by a configuration reload: AUTH again"
    check_eq(bob.call("GET", "app:1"), ("err", lost % "bob"), "bob told once")
    check_eq(bob.call("GET", "app:1"), ("err", "NOAUTH Authentication required."), "bob after")
    check_eq(bob.call("AUTH", "bob", PW["bob"]), ("err", WRONGPASS), "bob is gone")
    check_eq(carol.call("PING"), ("err", lost % "carol"), "carol told")
    check_eq(carol.call("AUTH", "carol", PW["carol"]), ("err", WRONGPASS), "carol is off")
    check_eq(implicit.call("GET", "anything"), None, "default's new rules reach it")
    d = Conn(s.cmp)
    check_eq(d.call("AUTH", "dave", PW["dave"]), ("err", WRONGPASS), "dave's old password")
    check_eq(d.call("AUTH", "dave", PW["newdave"]), b"+OK", "dave is on")
    check_eq(d.call("SET", "d:1", "v"), b"+OK", "dave writes d:")
    # The users go: the pool's redis_auth alone. An authenticated user must
    # AUTH again (redis_auth is not what it gave); the implicit default
    # client is a new client (NOAUTH).
    by.done("before the users go")
    no_users = s.conf.split("cmp:\n", 1)[0] + "cmp:\n" + s.conf.split("cmp:\n", 1)[1].split(
        "  users:\n", 1)[0] + "nodef:" + s.conf.split("nodef:", 1)[1]
    proxy_reload(s, no_users)
    check_eq(d.call("GET", "d:1"), ("err", lost % "dave"), "dave told: no users now")
    check_eq(implicit.call("GET", "x"), ("err", "NOAUTH Authentication required."),
             "the implicit default must AUTH with redis_auth now")
    check_eq(implicit.call("AUTH", PW["srv"]), b"+OK", "AUTH redis_auth")
    check_eq(implicit.call("GET", "d:1"), b"v", "then everything")
    print("ok a reload changes a user's rules at its next command, tells removed and switched "
          "off users once, adds users; the bystander saw %d rounds, no error" % by.count)
    log = open(os.path.join(env.dir, "proxy-%d.log" % s.cmp), errors="replace").read()
    check("users: alice changed, carol switched off" in log, "the log has the reload's users")
    s.grep("reload")


if __name__ == "__main__":
    run([test_side_by_side, test_proxy_own, test_reload])
