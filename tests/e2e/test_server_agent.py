"""anchor-server with the real anchor-agent, and the server under load.

The agent is run with --once (log in, print the SPIFFE ID, exit 0; or exit 1
with the server's message) and, for renewal, as a daemon. The load test
drives 200 logins through the hand-built client of test_server_harness.py
while the AgentAttestation document is replaced 20 times.
"""

import os
import socket
import subprocess
import threading
import time

import pytest

import test_server_harness as h
from test_server_harness import pki  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not os.access(h.AGENT_BIN, os.X_OK),
                                reason="anchor-agent not built")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_agent(tmp, server, leaf, pki_, cluster=h.CLUSTER, name="agent", key=None):
    d = os.path.join(str(tmp), name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "agent.crt"), "w") as f:
        f.write(leaf.pem)
    with open(os.path.join(d, "inter.pem"), "w") as f:
        f.write(pki_.inter.pem)
    with open(os.path.join(d, "agent.key"), "w") as f:
        f.write((key or leaf).key_pem())
    cfg = os.path.join(d, "agent.yaml")
    with open(cfg, "w") as f:
        f.write("""cluster-id: %s
trust-domain: %s
server-address: 127.0.0.1:%d
trust-bundle-path: %s
data-dir: %s
log-level: debug
metrics-address: "127.0.0.1:%d"
disable-kubernetes-attestation: true
agent-attestors:
  - type: x509pop
    config:
      certificatePath: "%s/agent.crt"
      privateKeyPath: "%s/agent.key"
      intermediatesPath: "%s/inter.pem"
""" % (cluster, h.TD, server.port, os.path.join(server.data_dir, "ca-cert.pem"),
            os.path.join(d, "data"), free_port(), d, d, d))
    return cfg


def run_once(cfg):
    return subprocess.run([h.AGENT_BIN, "--config", cfg, "--once"], capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def srv(tmp_path, pki):
    s = h.Server(tmp_path).start()
    s.set_policy(h.policy_doc(pki.root.pem))
    yield s
    s.stop()


@pytest.mark.parametrize("key_kind", ["ec", "rsa"])
def test_agent_login(srv, pki, tmp_path, key_kind):
    leaf = pki.leaf(key=h.ec_key() if key_kind == "ec" else h.rsa_key())
    r = run_once(write_agent(tmp_path, srv, leaf, pki))
    assert r.returncode == 0, r.stderr
    want = "spiffe://%s/agents/x509pop/%s" % (h.TD, leaf.sha1)
    assert r.stdout.strip() == want
    assert '"msg":"Sending Login"' in r.stderr and '"attestors":["x509pop"]' in r.stderr
    assert '"msg":"Connected to server"' in r.stderr
    assert srv.wait_log("Login started with multi-attestation support")[
        "providedMethods"] == ["x509pop"]
    attrs = srv.wait_log("Authorization received and verified")["agentAttestationAttributes"]
    assert 'x509pop:x509_pop.serial_number="%s"' % leaf.serial in attrs
    assert srv.wait_log("Connected to agent")["spiffeId"] == want
    assert srv.metric("anchor_attestation_agent_proof_total",
                      {"attestor_type": "x509pop", "outcome": "success"}) == 1


def test_agent_chain_rejected(srv, pki, tmp_path):
    other = h.Pki("Stranger")
    leaf = other.leaf()
    r = run_once(write_agent(tmp_path, srv, leaf, other))
    assert r.returncode != 0
    assert h.MSG_REJECTED in r.stderr
    line = srv.wait_log("certificate chain verification failed")
    assert line["attestorType"] == "x509pop"


def test_agent_no_policy(tmp_path, pki):
    s = h.Server(tmp_path).start()
    try:
        leaf = pki.leaf()
        r = run_once(write_agent(tmp_path, s, leaf, pki))
        assert r.returncode != 0
        assert h.MSG_NO_POLICY in r.stderr
        s.wait_log(h.MSG_POLICY_NOTFOUND)
    finally:
        s.stop()


def test_agent_wrong_cluster(srv, pki, tmp_path):
    leaf = pki.leaf()
    r = run_once(write_agent(tmp_path, srv, leaf, pki, cluster="c-other"))
    assert r.returncode != 0
    assert 'cluster id \\"c-other\\" does not match' in r.stderr or \
        'cluster id "c-other" does not match' in r.stderr
    srv.wait_log("Login refused: wrong cluster id")


def test_agent_banned(srv, pki, tmp_path):
    leaf = pki.leaf()
    cfg = write_agent(tmp_path, srv, leaf, pki)
    r = run_once(cfg)
    assert r.returncode == 0, r.stderr
    srv.ban(r.stdout.strip())
    r = run_once(cfg)
    assert r.returncode != 0 and "agent is banned" in r.stderr


def test_agent_daemon_renews(tmp_path, pki):
    """SVIDs of 120 s (notBefore is backdated 60 s, so half of the lifetime
    passes 30 s after issuance): the agent renews over mTLS, once, not in a
    loop."""
    s = h.Server(tmp_path, extra_args=["--ca-agent-svid-ttl", "120s"]).start()
    s.set_policy(h.policy_doc(pki.root.pem))
    leaf = pki.leaf()
    cfg = write_agent(tmp_path, s, leaf, pki)
    log = open(os.path.join(str(tmp_path), "agent.log"), "wb")
    p = subprocess.Popen([h.AGENT_BIN, "--config", cfg], stdout=log, stderr=log)
    try:
        s.wait_log("Connected to agent", timeout=20)
        t0 = time.monotonic()
        s.wait_log("Renewed agent SVID", timeout=60)
        assert time.monotonic() - t0 > 10
        time.sleep(2)
        assert len(s.find_logs("Renewed agent SVID")) == 1
        assert len(s.find_logs("Connected to agent")) == 1
    finally:
        p.terminate()
        p.wait(timeout=20)
        log.close()
        s.stop()


def test_200_logins_across_20_reloads(tmp_path, pki):
    """No legitimate login fails while the policy is replaced 20 times."""
    s = h.Server(tmp_path).start()
    other = h.Pki("Second")
    docs = [h.policy_doc(pki.root.pem),
            h.policy_doc([other.root.pem, pki.root.pem], name="renamed")]
    s.set_policy(docs[0])
    failures = []
    done = []

    def worker(n):
        conn = s.connect()
        try:
            for i in range(n):
                leaf = pki.leaf(cn="n%d" % i)
                res = h.login(s, leaf.key, pki.evidence(leaf), conn=conn)
                if res.status != h.OK:
                    failures.append((res.status, res.message))
                done.append(1)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(50,)) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(20):
        s.set_policy(docs[(i + 1) % 2])
        time.sleep(0.05)
    for t in threads:
        t.join(timeout=300)
    assert len(done) == 200
    assert failures == []
    assert s.metric("anchor_login_total", {"result": "success"}) == 200
    assert len(s.find_logs("Updating configuration snapshot")) >= 21
    s.stop()


def test_server_restart_agent_recovers(tmp_path, pki):
    """The agent keeps running across a server restart on the same port: its
    record and the CA survive, so its next renewal (or login) succeeds."""
    port = free_port()
    s = h.Server(tmp_path, extra_args=["--ca-agent-svid-ttl", "120s",
                                       "--listen-address", "127.0.0.1:%d" % port]).start()
    s.set_policy(h.policy_doc(pki.root.pem))
    leaf = pki.leaf()
    cfg = write_agent(tmp_path, s, leaf, pki)
    log = open(os.path.join(str(tmp_path), "agent.log"), "wb")
    p = subprocess.Popen([h.AGENT_BIN, "--config", cfg], stdout=log, stderr=log)
    try:
        connected = s.wait_log("Connected to agent", timeout=20)
        s.stop()
        s.start()
        assert s.port == port
        s.wait_log("Loaded AgentAttestation document")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if s.find_logs("Renewed agent SVID") or s.find_logs("Connected to agent"):
                break
            time.sleep(0.2)
        hits = s.find_logs("Renewed agent SVID") + s.find_logs("Connected to agent")
        assert hits and hits[0]["spiffeId"] == connected["spiffeId"]
        assert not s.get_agent(connected["spiffeId"]).banned
    finally:
        p.terminate()
        p.wait(timeout=20)
        log.close()
        s.stop()
