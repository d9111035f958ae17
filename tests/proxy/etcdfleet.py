"""etcdfleet.py - a real etcd cluster on loopback for the fleet's tests:
N `etcd` members (Debian's etcd-server 3.4) on free client and peer ports,
each with its own --data-dir in the test's temp dir, started by harness.Env
and stopped by PID; `etcdctl` (etcd-client) asks them questions.

    fleet = EtcdFleet(env)                 # 3 members, healthy on return
    fleet.endpoints()                      # "http://127.0.0.1:C0,..."
    i = fleet.leader()                     # index of the raft leader
    fleet.kill(i); fleet.restart(i)        # kill -9, then the same member back
    fleet.freeze(i); fleet.thaw(i)         # SIGSTOP / SIGCONT
    fleet.etcdctl("get", "--prefix", "/a", "-w", "json")
    certs = make_certs(env.dir)            # a CA, a server and a client cert
    EtcdFleet(env, members=1, tls=certs)   # https, client certificates required

What was found against the real programs (etcd 3.4.23, Debian 12):
- a member restarted on its data dir ignores the --initial-cluster flags and
  rejoins with its old identity, so restart() passes the same command line;
- with 2 of 3 members down the last one answers every request through the
  JSON gateway with "etcdserver: no leader" (HTTP 503) when the request
  carries the gateway header Grpc-Metadata-hasleader (etcd's require-leader
  metadata); without it, a read waits for the server's own timeout (~7 s);
- a request that reaches a follower just after the leader was killed waits
  those 7 s too (its proposal went to the dead leader), whatever the
  metadata: only the client's own timeout moves it on sooner;
- two fleets can share a temp dir: data dirs and logs are named by port.
"""
import json
import os
import signal
import subprocess
import time

from harness import check, free_ports

ETCD = "etcd"
ETCDCTL = "etcdctl"


class EtcdFleet:
    """`members` etcd processes forming one cluster. `extra`: more etcd flags
    for every member (e.g. ["--auth-token-ttl", "2"]); `tls`: make_certs()'s
    files, for https client URLs that require a client certificate."""

    def __init__(self, env, members=3, extra=(), wait=True, tls=None):
        self.env = env
        self.tls = tls
        self.count = members
        self.extra = list(extra)
        ports = free_ports(2 * members)
        self.client_ports = ports[:members]
        self.peer_ports = ports[members:]
        self.names = ["e%d" % i for i in range(members)]
        self.procs = [None] * members
        self.frozen = set()
        self.user = None  # (name, password) once auth is enabled
        self.cluster = ",".join("%s=http://127.0.0.1:%d" % (self.names[i], self.peer_ports[i])
                                for i in range(members))
        for i in range(members):
            self.start(i)
        if wait:
            self.wait_healthy()

    # ---- members -------------------------------------------------------

    def url(self, i):
        scheme = "https" if self.tls else "http"
        return "%s://127.0.0.1:%d" % (scheme, self.client_ports[i])

    def endpoints(self, members=None):
        """The client URLs of `members` (default all), comma-separated."""
        members = range(self.count) if members is None else members
        return ",".join(self.url(i) for i in members)

    def start(self, i):
        """Starts member i (first start or restart on its data dir)."""
        data = os.path.join(self.env.dir, self._file(i, ""))
        argv = [ETCD, "--name", self.names[i], "--data-dir", data,
                "--listen-client-urls", self.url(i),
                "--advertise-client-urls", self.url(i),
                "--listen-peer-urls", "http://127.0.0.1:%d" % self.peer_ports[i],
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % self.peer_ports[i],
                "--initial-cluster", self.cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", "chash-test-%d" % self.peer_ports[0],
                "--logger", "zap", "--log-outputs", "stderr"] + self.extra
        if self.tls:
            argv += ["--cert-file", self.tls["server_cert"], "--key-file", self.tls["server_key"],
                     "--trusted-ca-file", self.tls["ca"], "--client-cert-auth"]
        self.procs[i] = self.env.spawn(argv, None, self._file(i, ".log"))
        self.frozen.discard(i)
        return self.procs[i]

    def _file(self, i, suffix):
        """Member i's data dir or log: named by its port, so two fleets can
        share a temp dir."""
        return "etcd-%s-%d%s" % (self.names[i], self.client_ports[i], suffix)

    def restart(self, i, wait=True):
        """Starts a killed member again; waits until it is healthy."""
        check(self.procs[i].poll() is not None, "member %d is still running" % i)
        self.start(i)
        if wait:
            self.wait_healthy([i])

    def kill(self, i, sig=signal.SIGKILL):
        """Sends sig (default kill -9) to member i and, for a fatal signal,
        waits until it is gone."""
        p = self.procs[i]
        if i in self.frozen:
            os.kill(p.pid, signal.SIGCONT)
            self.frozen.discard(i)
        p.send_signal(sig)
        p.wait(10)

    def freeze(self, i):
        os.kill(self.procs[i].pid, signal.SIGSTOP)
        self.frozen.add(i)

    def thaw(self, i):
        os.kill(self.procs[i].pid, signal.SIGCONT)
        self.frozen.discard(i)

    def is_running(self, i):
        return self.procs[i] is not None and self.procs[i].poll() is None

    def stop_all(self):
        """Every member gone (kill -9): the data dirs stay for a restart."""
        for i in range(self.count):
            if self.is_running(i):
                self.kill(i)

    def close(self):
        """Thaws what is frozen, so Env.close's SIGKILL finds it running."""
        for i in list(self.frozen):
            self.thaw(i)

    # ---- questions -----------------------------------------------------

    def etcdctl(self, *args, endpoints=None, timeout=10, user=True, check_rc=True):
        """etcdctl ARGS against `endpoints` (default: every running member),
        as the fleet's user once auth is on; its stdout as text."""
        if endpoints is None:
            endpoints = self.endpoints([i for i in range(self.count)
                                        if self.is_running(i) and i not in self.frozen])
        argv = [ETCDCTL, "--endpoints", endpoints, "--command-timeout", "%ds" % timeout]
        if user and self.user:
            argv += ["--user", "%s:%s" % self.user]
        if self.tls:
            argv += ["--cacert", self.tls["ca"], "--cert", self.tls["client_cert"],
                     "--key", self.tls["client_key"]]
        env = dict(os.environ, ETCDCTL_API="3")
        r = subprocess.run(argv + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, timeout=timeout + 5)
        if check_rc and r.returncode != 0:
            raise AssertionError("etcdctl %s: %s" % (" ".join(args), r.stderr.decode()))
        return r.stdout.decode()

    def status(self, i):
        """`etcdctl endpoint status` of member i as a dict, or None when it
        does not answer."""
        out = self.etcdctl("endpoint", "status", "-w", "json", endpoints=self.url(i),
                           timeout=2, check_rc=False)
        try:
            got = json.loads(out)
        except ValueError:
            return None
        return got[0]["Status"] if got else None

    def leader(self, timeout=20.0):
        """Index of the member every running member calls leader."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            ids, leaders = {}, set()
            for i in range(self.count):
                if not self.is_running(i) or i in self.frozen:
                    continue
                st = self.status(i)
                if st is None:
                    leaders.add(None)
                    continue
                ids[st["header"]["member_id"]] = i
                leaders.add(st.get("leader", 0))
            if len(leaders) == 1:
                lead = leaders.pop()
                if lead in ids:
                    return ids[lead]
            time.sleep(0.1)
        raise AssertionError("no leader among etcd members within %.0fs" % timeout)

    def wait_healthy(self, members=None, timeout=30.0):
        """Until `etcdctl endpoint health` passes on `members` (default: all
        running)."""
        members = [i for i in range(self.count) if self.is_running(i)] \
            if members is None else members
        deadline = time.time() + timeout
        for i in members:
            while True:
                p = self.procs[i]
                check(p.poll() is None, "etcd member %d exited with %s (log %s)"
                      % (i, p.returncode, os.path.join(self.env.dir, self._file(i, ".log"))))
                out = self.etcdctl("endpoint", "health", "-w", "json", endpoints=self.url(i),
                                   timeout=2, check_rc=False)
                if '"health":true' in out:
                    break
                if time.time() > deadline:
                    raise AssertionError("etcd member %d not healthy within %.0fs"
                                         % (i, timeout))
                time.sleep(0.1)

    def enable_auth(self, root_password, users=()):
        """A root user with the root role, then `users` [(name, password,
        prefix)], each with a role of its own reading and writing its prefix;
        then `etcdctl auth enable`. etcdctl speaks as root afterwards."""
        self.etcdctl("user", "add", "root:%s" % root_password)
        self.etcdctl("user", "grant-role", "root", "root")
        for name, password, prefix in users:
            self.etcdctl("role", "add", name)
            self.etcdctl("role", "grant-permission", name, "readwrite", "--prefix=true", prefix)
            self.etcdctl("user", "add", "%s:%s" % (name, password))
            self.etcdctl("user", "grant-role", name, name)
        self.etcdctl("auth", "enable")
        self.user = ("root", root_password)

    def get_prefix(self, prefix):
        """What etcd holds under prefix, by etcdctl: {key bytes: (value bytes,
        mod_revision, lease)}."""
        import base64
        got = json.loads(self.etcdctl("get", "--prefix", prefix, "-w", "json"))
        out = {}
        for kv in got.get("kvs", []):
            out[base64.b64decode(kv["key"])] = (base64.b64decode(kv.get("value", "")),
                                                 int(kv["mod_revision"]), int(kv.get("lease", 0)))
        return out


def make_certs(directory):
    """A CA, a server certificate for 127.0.0.1 (usable as a client too: etcd
    3.4's gateway dials its own gRPC server with it) and a client
    certificate, P-256 keys, valid for a day; {name: path}."""
    d = os.path.join(directory, "certs")
    os.makedirs(d, exist_ok=True)
    p = lambda name: os.path.join(d, name)  # noqa: E731

    def run(*argv):
        subprocess.run(["openssl"] + list(argv), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *key, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "1",
        "-subj", "/CN=chash-test-ca")
    for name, usage in (("server", "serverAuth,clientAuth"), ("client", "clientAuth")):
        ext = p(name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=%s\n" % usage)
        run("req", *key, "-keyout", p(name + ".key"), "-out", p(name + ".csr"),
            "-subj", "/CN=%s" % ("127.0.0.1" if name == "server" else "root"))
        run("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
            "-CAcreateserial", "-out", p(name + ".pem"), "-days", "1", "-extfile", ext)
    return {"ca": p("ca.pem"), "server_cert": p("server.pem"), "server_key": p("server.key"),
            "client_cert": p("client.pem"), "client_key": p("client.key")}
