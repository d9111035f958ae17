"""tlscerts.py - the certificates the TLS tests need, made with the openssl
command line (Debian's openssl) in a test's directory: two CAs, and
leaves signed by them that are good, expired, for another host, or from
the other CA. ECDSA P-256 keys: quick to make and to use.
"""
import os
import ssl
import subprocess


def _run(args, cwd):
    subprocess.run(["openssl"] + args, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


class Certs:
    """Files in `where`; each name below is a path attribute:
    ca, ca2 (CAs, .crt); server (localhost and 127.0.0.1, by ca),
    expired, wrong_host (other.example only), other_ca (by ca2),
    client (by ca), client_other_ca (by ca2); each leaf X has X + ".crt"
    and X + ".key"."""

    def __init__(self, where):
        self.dir = os.path.join(where, "certs")
        os.makedirs(self.dir, exist_ok=True)
        self._ca("ca")
        self._ca("ca2")
        # serverAuth and clientAuth: a cluster node presents it on the bus too.
        self._leaf("server", "ca", "DNS:localhost,IP:127.0.0.1", days=30,
                   usage="serverAuth,clientAuth")
        self._leaf("server_b", "ca", "DNS:localhost,IP:127.0.0.1", days=30)
        self._leaf("expired", "ca", "DNS:localhost,IP:127.0.0.1", days=-1)
        self._leaf("wrong_host", "ca", "DNS:other.example", days=30)
        self._leaf("other_ca", "ca2", "DNS:localhost,IP:127.0.0.1", days=30)
        self._leaf("client", "ca", "DNS:client", days=30, usage="clientAuth")
        self._leaf("client_other_ca", "ca2", "DNS:client", days=30, usage="clientAuth")

    def path(self, name):
        return os.path.join(self.dir, name)

    def crt(self, name):
        return self.path(name + ".crt")

    def key(self, name):
        return self.path(name + ".key")

    def _key(self, name):
        _run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-out", name + ".key"], self.dir)

    def _ca(self, name):
        self._key(name)
        _run(["req", "-x509", "-new", "-key", name + ".key", "-out", name + ".crt", "-days", "30",
              "-subj", "/CN=chash test %s" % name], self.dir)

    def _leaf(self, name, ca, san, days, usage="serverAuth"):
        """`days` < 0: expired (its notAfter before its notBefore, now)."""
        self._key(name)
        _run(["req", "-new", "-key", name + ".key", "-out", name + ".csr", "-subj",
              "/CN=%s" % name], self.dir)
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nextendedKeyUsage=%s\n" % (san, usage))
        _run(["x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
              "-CAcreateserial", "-days", str(days), "-out", name + ".crt", "-extfile", ext],
             self.dir)

    def client_context(self, ca="ca", cert=None, minimum=None, maximum=None):
        """An ssl.SSLContext that trusts `ca`, presents leaf `cert` if given,
        and speaks TLS versions minimum..maximum (ssl.TLSVersion)."""
        ctx = ssl.create_default_context(cafile=self.crt(ca))
        if cert:
            ctx.load_cert_chain(self.crt(cert), self.key(cert))
        if minimum:
            ctx.minimum_version = minimum
        if maximum:
            ctx.maximum_version = maximum
        return ctx
