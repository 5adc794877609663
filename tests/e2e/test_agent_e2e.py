"""End-to-end tests of anchor-agent: the real agent against the real server.

What the agent does, seen from the agent's side: its configuration in the
Linux form, the Helm values form and both; the credential checks that stop it
before it ever connects; --once (SPIFFE ID on stdout, exit 0; the server's
message on stderr, exit 1); the SVID, key and bundle it keeps in data-dir;
renewal over mutual TLS; re-attestation with replaced certificate files when
a renewal is refused; back-off while the server is unreachable and recovery
when it returns; the server authentication (bundle and SPIFFE ID); its
metrics endpoint.

The server, the PKI helpers and the fixtures come from test_server_harness.py
(the server engineer's harness). ctest sets ANCHOR_BINARY_DIR.
"""

import datetime
import json
import os
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import test_server_harness as h
from test_server_harness import pki  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not os.access(h.AGENT_BIN, os.X_OK),
                                reason="anchor-agent not built")

MSG_MISMATCH = "private key does not match the certificate"
MSG_NO_DS = "certificate does not include digitalSignature key usage"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Agent:
    """An agent's files (certificate, key, intermediates, agent.yaml) in its
    own directory, and its process when run as a daemon."""

    def __init__(self, tmp, server_port, bundle_path, leaf, pki_, name="agent", key_pem=None,
                 form="linux", cluster=h.CLUSTER, extra="", metrics=True):
        self.dir = os.path.join(str(tmp), name)
        os.makedirs(self.dir, exist_ok=True)
        self.data_dir = os.path.join(self.dir, "data")
        self.cert_path = os.path.join(self.dir, "agent.crt")
        self.key_path = os.path.join(self.dir, "agent.key")
        self.inter_path = os.path.join(self.dir, "inter.pem")
        self.metrics_port = free_port() if metrics else None
        self.write_credential(leaf, pki_, key_pem)
        attestor = ("- type: x509pop\n"
                    "  config:\n"
                    "    certificatePath: \"%s\"\n"
                    "    privateKeyPath: \"%s\"\n"
                    "    intermediatesPath: \"%s\"\n") % (self.cert_path, self.key_path,
                                                         self.inter_path)
        common = ("trust-domain: %s\nserver-address: 127.0.0.1:%d\ntrust-bundle-path: %s\n"
                  "data-dir: %s\nlog-level: debug\n") % (h.TD, server_port, bundle_path,
                                                        self.data_dir)
        if metrics:
            common += "metrics-address: \"127.0.0.1:%d\"\n" % self.metrics_port
        linux = ("cluster-id: %s\ndisable-kubernetes-attestation: true\nagent-attestors:\n" %
                 cluster) + indent(attestor, 2)
        helm = ("agent:\n  auth:\n    clusterId: %s\n    attestors:\n" % cluster) + \
            indent(attestor, 6)
        body = {"linux": linux, "helm": helm, "both": linux + helm}[form]
        self.config = os.path.join(self.dir, "agent.yaml")
        with open(self.config, "w") as f:
            f.write(common + body + extra)
        self.proc = None
        self.log_path = os.path.join(self.dir, "agent.log")

    def write_credential(self, leaf, pki_, key_pem=None):
        """Replaces the files in place (as an operator's rotation would)."""
        for path, text in ((self.cert_path, leaf.pem), (self.inter_path, pki_.inter.pem),
                           (self.key_path, key_pem or leaf.key_pem())):
            tmp = path + ".new"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, path)

    # -- --once

    def once(self, *extra):
        return subprocess.run([h.AGENT_BIN, "--config", self.config, "--once", *extra],
                              capture_output=True, text=True, timeout=60)

    # -- daemon

    def start(self, *extra):
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen([h.AGENT_BIN, "--config", self.config, *extra],
                                     stdout=subprocess.DEVNULL, stderr=self.logf)
        return self

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def logs(self):
        out = []
        with open(self.log_path, "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({"msg": line, "raw": True})
        return out

    def find_logs(self, msg):
        return [l for l in self.logs() if l.get("msg") == msg]

    def wait_log(self, msg, timeout=20, count=1, pred=None):
        deadline = time.monotonic() + timeout
        while True:
            hits = [l for l in self.find_logs(msg) if pred is None or pred(l)]
            if len(hits) >= count:
                return hits[count - 1]
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("anchor-agent exited %s waiting for %r:\n%s" % (
                    self.proc.returncode, msg, open(self.log_path).read()[-4000:]))
            if time.monotonic() > deadline:
                raise AssertionError("no %r agent log line within %ss:\n%s" % (
                    msg, timeout, open(self.log_path).read()[-4000:]))
            time.sleep(0.05)

    def http_get(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.metrics_port, path),
                                        timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name, labels=None):
        _, text = self.http_get("/metrics")
        want = name
        if labels:
            want += "{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}"
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return None

    # -- data-dir

    def svid(self):
        return load_certs(os.path.join(self.data_dir, "agent-svid.pem"))

    def svid_id(self):
        san = self.svid()[0].extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return san.value.get_values_for_type(x509.UniformResourceIdentifier)[0]


def load_certs(path):
    with open(path) as f:
        return h.pem_certs(f.read())


def indent(text, n):
    return "".join(" " * n + line + "\n" for line in text.splitlines())


def agent_id(leaf):
    return "spiffe://%s/agents/x509pop/%s" % (h.TD, leaf.sha1)


def bundle_path(server):
    return os.path.join(server.data_dir, "ca-cert.pem")


@pytest.fixture
def srv(tmp_path, pki):
    s = h.Server(tmp_path).start()
    s.set_policy(h.policy_doc(pki.root.pem))
    yield s
    s.stop()


# --- configuration forms, through the binary -------------------------------------------


@pytest.mark.parametrize("form", ["linux", "helm", "both"])
def test_config_forms_log_in(srv, pki, tmp_path, form):
    leaf = pki.leaf()
    a = Agent(tmp_path, srv.port, bundle_path(srv), leaf, pki, form=form)
    r = a.once()
    assert r.returncode == 0, r.stderr
    assert r.stdout == agent_id(leaf) + "\n"


def test_config_forms_conflict_refused(srv, pki, tmp_path):
    leaf = pki.leaf()
    extra = "agent:\n  auth:\n    clusterId: c-other\n"
    a = Agent(tmp_path, srv.port, bundle_path(srv), leaf, pki, extra=extra)
    r = a.once()
    assert r.returncode == 1
    assert r.stderr.strip() == ("anchor-agent: %s: cluster-id \"%s\" and agent.auth.clusterId "
                                "\"c-other\" disagree: give one" % (a.config, h.CLUSTER))
    assert not srv.find_logs("Login started with multi-attestation support")


@pytest.mark.parametrize("extra,message", [
    ("server-adress: 127.0.0.1:1\n", 'unknown key "server-adress"'),
    ("log-format: xml\n", "log-format: unknown log format xml (json, text)"),
    ("trust-domain: example.org\n", 'duplicate key "trust-domain"'),
])
def test_config_errors_name_the_key(srv, pki, tmp_path, extra, message):
    a = Agent(tmp_path, srv.port, bundle_path(srv), pki.leaf(), pki, extra=extra)
    r = a.once()
    assert r.returncode == 1
    assert r.stderr.strip() == "anchor-agent: %s: %s" % (a.config, message)


def test_flags_override_the_file(srv, pki, tmp_path):
    leaf = pki.leaf()
    a = Agent(tmp_path, 1, bundle_path(srv), leaf, pki)  # port 1: nobody there
    r = a.once("--server-address", "127.0.0.1:%d" % srv.port, "--log-format=text")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == agent_id(leaf)
    assert " INFO  Connected to server spiffeId=" + agent_id(leaf) in r.stderr


def test_once_unreachable_fails_fast(tmp_path, pki):
    s = h.Server(tmp_path).start()
    s.stop()
    port = free_port()
    a = Agent(tmp_path, port, bundle_path(s), pki.leaf(), pki)
    t0 = time.monotonic()
    r = a.once()
    assert time.monotonic() - t0 < 15
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1].startswith(
        "anchor-agent: cannot reach the server at 127.0.0.1:%d: " % port)
    assert not os.path.exists(os.path.join(a.data_dir, "agent-svid.pem"))


def test_usage_errors(tmp_path):
    for args in ([], ["--config"], ["extra-word"], ["--config", "a", "--config", "b"],
                 ["--config", "a", "--server-adress", "x:1"], ["--agent-attestors=x"]):
        r = subprocess.run([h.AGENT_BIN, *args], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2, (args, r.stderr)
        assert "usage: anchor-agent" in r.stderr
    r = subprocess.run([h.AGENT_BIN, "--config", str(tmp_path / "missing.yaml")],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "missing.yaml: cannot open: No such file or directory" in r.stderr


# --- credentials checked at start -------------------------------------------------------


def test_key_mismatch_refused_at_start(srv, pki, tmp_path):
    leaf = pki.leaf()
    other = pki.leaf(cn="other")
    a = Agent(tmp_path, srv.port, bundle_path(srv), leaf, pki, key_pem=other.key_pem())
    r = a.once()
    assert r.returncode == 1
    assert r.stderr.strip() == "anchor-agent: x509pop credential: " + MSG_MISMATCH
    # The daemon refuses the same way, before it ever connects.
    p = subprocess.run([h.AGENT_BIN, "--config", a.config], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 1 and MSG_MISMATCH in p.stderr
    assert "Sending Login" not in p.stderr
    assert not srv.find_logs("Login started with multi-attestation support")


def test_no_digital_signature_refused_at_start(srv, pki, tmp_path):
    leaf = pki.leaf(digital_signature=False)
    a = Agent(tmp_path, srv.port, bundle_path(srv), leaf, pki)
    r = a.once()
    assert r.returncode == 1
    assert r.stderr.strip() == "anchor-agent: x509pop credential: " + MSG_NO_DS


@pytest.mark.parametrize("kind,fmt", [
    ("ec", serialization.PrivateFormat.PKCS8),
    ("ec", serialization.PrivateFormat.TraditionalOpenSSL),  # SEC1
    ("rsa", serialization.PrivateFormat.PKCS8),
    ("rsa", serialization.PrivateFormat.TraditionalOpenSSL),  # PKCS#1
])
def test_ec_and_rsa_keys_in_every_format(srv, pki, tmp_path, kind, fmt):
    leaf = pki.leaf(key=h.ec_key() if kind == "ec" else h.rsa_key())
    key_pem = leaf.key.private_bytes(serialization.Encoding.PEM, fmt,
                                     serialization.NoEncryption()).decode()
    a = Agent(tmp_path, srv.port, bundle_path(srv), leaf, pki, key_pem=key_pem)
    r = a.once()
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == agent_id(leaf)
    lines = [json.loads(l) for l in r.stderr.splitlines()]
    sending = [l for l in lines if l["msg"] == "Sending Login"]
    assert sending and sending[0]["level"] == "debug"
    assert sending[0]["attestors"] == ["x509pop"]
    connected = [l for l in lines if l["msg"] == "Connected to server"]
    assert connected and connected[0]["level"] == "info"
    assert connected[0]["spiffeId"] == agent_id(leaf)


# --- what the agent keeps in data-dir ---------------------------------------------------


def test_data_dir_holds_svid_key_and_bundle(srv, pki, tmp_path):
    leaf = pki.leaf()
    a = Agent(tmp_path, srv.port, bundle_path(srv), leaf, pki)
    r = a.once()
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(os.stat(a.data_dir).st_mode) == 0o700
    key_path = os.path.join(a.data_dir, "agent-svid-key.pem")
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert sorted(os.listdir(a.data_dir)) == ["agent-svid-key.pem", "agent-svid.pem",
                                              "bundle.pem"]
    chain = a.svid()
    svid = chain[0]
    assert a.svid_id() == agent_id(leaf)
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    assert key.public_key().public_numbers() == svid.public_key().public_numbers()
    roots = load_certs(os.path.join(a.data_dir, "bundle.pem"))
    assert roots == load_certs(bundle_path(srv))
    roots[0].public_key().verify(svid.signature, svid.tbs_certificate_bytes,
                                 ec.ECDSA(svid.signature_hash_algorithm))
    bc = svid.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.value.ca is False


# --- the documented errors, seen from the agent ------------------------------------------


def test_chain_rejected_seen_by_agent(srv, pki, tmp_path):
    stranger = h.Pki("Stranger")
    a = Agent(tmp_path, srv.port, bundle_path(srv), stranger.leaf(), stranger)
    r = a.once()
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == "anchor-agent: " + h.MSG_REJECTED
    failed = [json.loads(l) for l in r.stderr.splitlines()[:-1]]
    failed = [l for l in failed if l["msg"] == "Login failed"]
    assert failed and failed[0]["error"] == h.MSG_REJECTED
    assert failed[0]["status"] == "PERMISSION_DENIED"
    srv.wait_log("certificate chain verification failed")


def test_no_policy_seen_by_agent(tmp_path, pki):
    s = h.Server(tmp_path).start()
    try:
        a = Agent(tmp_path, s.port, bundle_path(s), pki.leaf(), pki)
        r = a.once()
        assert r.returncode == 1
        assert r.stderr.splitlines()[-1] == "anchor-agent: " + h.MSG_NO_POLICY
    finally:
        s.stop()


def test_policy_without_our_attestor_seen_by_agent(srv, pki, tmp_path):
    """The agent's chain is fine but the policy trusts another CA only."""
    other = h.Pki("Other")
    srv.set_policy(h.policy_doc(other.root.pem))
    a = Agent(tmp_path, srv.port, bundle_path(srv), pki.leaf(), pki)
    r = a.once()
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == "anchor-agent: " + h.MSG_REJECTED


def test_wrong_cluster_seen_by_agent(srv, pki, tmp_path):
    a = Agent(tmp_path, srv.port, bundle_path(srv), pki.leaf(), pki, cluster="c-other")
    r = a.once()
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == (
        'anchor-agent: cluster id "c-other" does not match this server\'s cluster "%s"' %
        h.CLUSTER)


def test_banned_agent_seen_by_agent(srv, pki, tmp_path):
    leaf = pki.leaf()
    a = Agent(tmp_path, srv.port, bundle_path(srv), leaf, pki)
    assert a.once().returncode == 0
    srv.ban(agent_id(leaf))
    r = a.once()
    assert r.returncode == 1
    assert "agent is banned" in r.stderr.splitlines()[-1]


# --- server authentication ---------------------------------------------------------------


def test_untrusted_server_refused(srv, pki, tmp_path):
    """A bootstrap bundle that does not hold the server's CA: the agent never
    sends its evidence."""
    stranger = h.Pki("Not the server's CA")
    bogus = os.path.join(str(tmp_path), "bogus-bundle.pem")
    with open(bogus, "w") as f:
        f.write(stranger.root.pem)
    a = Agent(tmp_path, srv.port, bogus, pki.leaf(), pki)
    r = a.once()
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1].startswith(
        "anchor-agent: server certificate verification failed: ")
    assert not srv.find_logs("Login started with multi-attestation support")


def test_server_of_another_trust_domain_refused(tmp_path, pki):
    """The server presents spiffe://other.example/server; the agent wants
    spiffe://example.org/server."""
    s = h.Server(tmp_path)
    s.args[s.args.index("--trust-domain") + 1] = "other.example"
    s.start()
    try:
        a = Agent(tmp_path, s.port, bundle_path(s), pki.leaf(), pki)
        r = a.once()
        assert r.returncode == 1
        last = r.stderr.splitlines()[-1]
        assert last == ("anchor-agent: server presented SPIFFE ID: "
                        "spiffe://other.example/server, expected spiffe://example.org/server")
        assert not s.find_logs("Login started with multi-attestation support")
    finally:
        s.stop()


# --- the daemon: back-off, recovery, renewal, re-attestation, metrics ----------------------


def test_unreachable_server_backoff_then_recovery(tmp_path, pki):
    """The server is down when the agent starts: the agent retries with
    growing, jittered delays, then logs in once the server is back."""
    port = free_port()
    s = h.Server(tmp_path, extra_args=["--listen-address", "127.0.0.1:%d" % port]).start()
    s.set_policy(h.policy_doc(pki.root.pem))
    s.stop()
    leaf = pki.leaf()
    a = Agent(tmp_path, port, bundle_path(s), leaf, pki).start()
    try:
        third = a.wait_log("Login failed", count=3, timeout=20)
        fails = a.find_logs("Login failed")
        assert all(f["status"] == "UNAVAILABLE" for f in fails)
        delays = [f["retryInMs"] for f in fails[:3]]
        assert 500 <= delays[0] <= 1000 and 1000 <= delays[1] <= 2000
        assert 2000 <= delays[2] <= 4000, delays
        assert third["attempt"] == 3
        assert a.http_get("/health/ready")[0] == 503
        assert a.metric("anchor_agent_logins_total", {"result": "failed"}) >= 3
        # A connection failure is not a failed proof.
        assert a.metric("anchor_attestation_signer_proof_total",
                        {"attestor_type": "x509pop", "outcome": "failed"}) == 0
        s.start()
        got = a.wait_log("Connected to server", timeout=30)
        assert got["spiffeId"] == agent_id(leaf)
        assert a.http_get("/health/ready") == (200, "ok\n")
        assert a.metric("anchor_attestation_signer_proof_total",
                        {"attestor_type": "x509pop", "outcome": "success"}) == 1
    finally:
        a.stop()
        s.stop()


def test_kept_svid_taken_up_at_restart(tmp_path, pki):
    """An agent restarted while the server is away holds the SVID it kept in
    data-dir (ready), and keeps trying to log in; a kept SVID whose key was
    damaged is ignored."""
    s = h.Server(tmp_path).start()
    s.set_policy(h.policy_doc(pki.root.pem))
    leaf = pki.leaf()
    a = Agent(tmp_path, s.port, bundle_path(s), leaf, pki)
    assert a.once().returncode == 0
    s.stop()
    a.start()
    try:
        loaded = a.wait_log("Loaded SVID from data-dir")
        assert loaded["spiffeId"] == agent_id(leaf)
        a.wait_log("Login failed")
        assert a.http_get("/health/ready") == (200, "ok\n")
    finally:
        assert a.stop() == 0
    with open(os.path.join(a.data_dir, "agent-svid-key.pem"), "w") as f:
        f.write(pki.leaf(cn="x").key_pem())
    a.start()
    try:
        ignored = a.wait_log("Ignoring the SVID kept in data-dir")
        assert ignored["error"] == "the SVID does not certify the agent's key"
        a.wait_log("Login failed")
        assert a.http_get("/health/ready")[0] == 503
    finally:
        assert a.stop() == 0


def test_failed_proofs_counted_and_retried(srv, tmp_path):
    """A refused chain in daemon mode: logged, counted as a failed proof,
    retried with back-off (the operator may fix the policy)."""
    stranger = h.Pki("Stranger")
    a = Agent(tmp_path, srv.port, bundle_path(srv), stranger.leaf(), stranger).start()
    try:
        first = a.wait_log("Login failed", count=2, timeout=20)
        assert first["error"] == h.MSG_REJECTED
        assert a.metric("anchor_attestation_signer_proof_total",
                        {"attestor_type": "x509pop", "outcome": "failed"}) >= 2
        assert a.proc.poll() is None
    finally:
        assert a.stop() == 0


def test_renewal_then_reattestation_with_replaced_files(tmp_path, pki):
    """SVIDs of 60 s: the agent renews over mutual TLS before half of the
    lifetime; when the server refuses a renewal (the agent was banned) it
    attests again, with the certificate and key that replaced the old ones."""
    s = h.Server(tmp_path, extra_args=["--ca-agent-svid-ttl", "60s"]).start()
    s.set_policy(h.policy_doc(pki.root.pem))
    first = pki.leaf(cn="first")
    second = pki.leaf(cn="second", key=h.rsa_key())
    a = Agent(tmp_path, s.port, bundle_path(s), first, pki).start()
    try:
        got = a.wait_log("Connected to server")
        assert got["spiffeId"] == agent_id(first)
        t0 = time.monotonic()
        serial0 = a.svid()[0].serial_number
        renewed = a.wait_log("Renewed SVID", timeout=45)
        elapsed = time.monotonic() - t0
        assert 20 <= elapsed <= 36, elapsed  # 40..50 % of 60 s, plus slack
        assert renewed["spiffeId"] == agent_id(first)
        assert a.svid()[0].serial_number != serial0
        assert s.wait_log("Renewed agent SVID")["spiffeId"] == agent_id(first)
        assert a.metric("anchor_agent_svid_renewals_total", {"result": "success"}) == 1
        assert len(a.find_logs("Connected to server")) == 1
        # A botched rotation first (the new certificate with the old key),
        # then the old identity is banned: the renewal is refused, the
        # agent re-reads its files, cannot prove, counts a failed proof and
        # backs off...
        a.write_credential(second, pki, key_pem=first.key_pem())
        s.ban(agent_id(first))
        a.wait_log("SVID renewal refused, attesting again", timeout=45)
        failed = a.wait_log("Login failed", timeout=20)
        assert failed["error"] == "x509pop credential: " + MSG_MISMATCH, failed
        assert a.metric("anchor_attestation_signer_proof_total",
                        {"attestor_type": "x509pop", "outcome": "failed"}) >= 1
        # ...until the operator puts the right key in place.
        a.write_credential(second, pki)
        got = a.wait_log("Connected to server", count=2, timeout=20)
        assert got["spiffeId"] == agent_id(second)
        assert a.svid_id() == agent_id(second)
        assert a.metric("anchor_attestation_signer_proof_total",
                        {"attestor_type": "x509pop", "outcome": "success"}) == 2
    finally:
        assert a.stop() == 0
        s.stop()


def test_server_restart_during_renewal(tmp_path, pki):
    """The server is down when a renewal is due: the agent backs off and
    renews once the server is back, without attesting again."""
    port = free_port()
    s = h.Server(tmp_path, extra_args=["--ca-agent-svid-ttl", "60s",
                                       "--listen-address", "127.0.0.1:%d" % port]).start()
    s.set_policy(h.policy_doc(pki.root.pem))
    leaf = pki.leaf()
    a = Agent(tmp_path, port, bundle_path(s), leaf, pki).start()
    try:
        a.wait_log("Connected to server")
        s.stop()
        failed = a.wait_log("SVID renewal failed", timeout=45)
        assert failed["status"] == "UNAVAILABLE" and failed["retryInMs"] <= 1000
        s.start()
        renewed = a.wait_log("Renewed SVID", timeout=30)
        assert renewed["spiffeId"] == agent_id(leaf)
        assert len(a.find_logs("Connected to server")) == 1
    finally:
        assert a.stop() == 0
        s.stop()


def test_expired_svid_reattests(tmp_path, pki):
    """The server stays away for longer than the SVID lives: the agent's
    renewals fail until the SVID expires, then it attests again (a Login,
    not a renewal) as soon as the server is back."""
    port = free_port()
    s = h.Server(tmp_path, extra_args=["--ca-agent-svid-ttl", "60s",
                                       "--listen-address", "127.0.0.1:%d" % port]).start()
    s.set_policy(h.policy_doc(pki.root.pem))
    leaf = pki.leaf()
    a = Agent(tmp_path, port, bundle_path(s), leaf, pki).start()
    try:
        a.wait_log("Connected to server")
        expires = a.svid()[0].not_valid_after.replace(tzinfo=None)
        s.stop()
        a.wait_log("SVID renewal failed", timeout=45)
        a.wait_log("SVID expired, attesting again", timeout=60)
        now = datetime.datetime.utcnow()
        assert now >= expires and (now - expires).total_seconds() < 5, (now, expires)
        assert a.http_get("/health/ready")[0] == 503
        s.start()
        got = a.wait_log("Connected to server", count=2, timeout=30)
        assert got["spiffeId"] == agent_id(leaf)
        assert not a.find_logs("Renewed SVID")
        assert a.http_get("/health/ready") == (200, "ok\n")
    finally:
        assert a.stop() == 0
        s.stop()


def test_metrics_endpoint(srv, pki, tmp_path):
    a = Agent(tmp_path, srv.port, bundle_path(srv), pki.leaf(), pki).start()
    try:
        a.wait_log("Connected to server")
        status, text = a.http_get("/metrics")
        assert status == 200
        assert ('anchor_attestation_signer_proof_total{attestor_type="x509pop",'
                'outcome="success"} 1') in text
        assert ('anchor_attestation_signer_proof_total{attestor_type="x509pop",'
                'outcome="failed"} 0') in text
        assert "# TYPE anchor_attestation_signer_proof_total counter" in text
        assert a.metric("anchor_agent_svid_expiry_timestamp_seconds") > time.time()
        assert a.http_get("/health/live") == (200, "ok\n")
        assert a.http_get("/nope")[0] == 404
    finally:
        assert a.stop() == 0
