"""anchor-server's Login, RenewSVID and FetchBundle, end to end.

A real anchor-server on loopback; the agent side is the hand-built client
of test_server_harness.py (pyOpenSSL + HTTP/2 frames), which signs x509pop
proofs over the connection's RFC 9266 exporter as anchor-agent does. Each
happy path has hostile twins; every documented message is asserted word for
word on both sides (issue 4, docs/troubleshooting.md).
"""

import os
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import test_server_harness as h
from test_server_harness import pki, server, server_with_policy  # noqa: F401 (fixtures)


def assert_svid(res, spiffe_id, bundle_pem):
    """The SVID of a LoginResult follows SPIFFE X509-SVID and chains to the
    bundle."""
    assert res.status == h.OK, (res.status, res.message)
    svid = res.result.svid
    assert svid.spiffe_id == spiffe_id
    leaf = x509.load_der_x509_certificate(svid.cert_chain[0])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [spiffe_id]
    bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert not ku.value.key_cert_sign and not ku.value.crl_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku and ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
        h.spki(res.svid_key)
    assert int(leaf.not_valid_after.replace(tzinfo=None).timestamp()) // 10 == \
        (svid.expires_at - time.timezone * 0) // 10 or svid.expires_at > time.time()
    root = h.pem_certs(bundle_pem)[0]
    root.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,
                             ec.ECDSA(leaf.signature_hash_algorithm))
    roots = [x509.load_der_x509_certificate(d) for d in res.result.bundle.roots]
    assert roots == [root]
    assert res.result.bundle.trust_domain == h.TD
    return leaf


def default_id(leaf):
    return "spiffe://%s/agents/x509pop/%s" % (h.TD, leaf.sha1)


# --- success ------------------------------------------------------------------------


@pytest.mark.parametrize("key_kind", ["ec", "rsa"])
def test_login_success(server_with_policy, pki, key_kind):
    s = server_with_policy
    leaf = pki.leaf(key=h.ec_key() if key_kind == "ec" else h.rsa_key())
    res = h.login(s, leaf.key, pki.evidence(leaf))
    assert_svid(res, default_id(leaf), s.bundle_pem)

    started = s.wait_log("Login started with multi-attestation support")
    assert started["providedMethods"] == ["x509pop"]
    verified = s.wait_log("Authorization received and verified")
    attrs = verified["agentAttestationAttributes"]
    assert 'x509pop:x509_pop.subject.common_name="node-1.example.org"' in attrs
    assert 'x509pop:x509_pop.serial_number="%s"' % leaf.serial in attrs
    assert 'x509pop:x509_pop.ca.%s="%s"' % (pki.inter.serial, pki.inter.sha1) in attrs
    assert 'x509pop:x509_pop.ca.%s="%s"' % (pki.root.serial, pki.root.sha1) in attrs
    assert list(res.result.attributes) == attrs
    connected = s.wait_log("Connected to agent")
    assert connected["spiffeId"] == default_id(leaf)
    msgs = [l["msg"] for l in s.logs()]
    assert msgs.index("Login started with multi-attestation support") < \
        msgs.index("Authorization received and verified") < msgs.index("Connected to agent")

    assert s.metric("anchor_attestation_agent_proof_total",
                    {"attestor_type": "x509pop", "outcome": "success"}) == 1
    assert s.metric("anchor_login_total", {"result": "success"}) == 1
    assert s.metric("anchor_svid_issued_total") == 1
    assert s.metric("anchor_login_duration_seconds_count", {"result": "success"}) == 1
    assert s.metric("anchor_connected_agents") == 1

    agent = s.get_agent(default_id(leaf))
    assert list(agent.attestor_types) == ["x509pop"]
    assert not agent.banned
    leaf_svid = x509.load_der_x509_certificate(res.result.svid.cert_chain[0])
    assert int(agent.svid_serial, 16) == leaf_svid.serial_number


def test_login_with_csr(server_with_policy, pki):
    s = server_with_policy
    leaf = pki.leaf()
    key = h.ec_key()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")]))
           .sign(key, hashes.SHA256()))
    res = h.login(s, leaf.key, pki.evidence(leaf), svid_key=key,
                  csr=csr.public_bytes(serialization.Encoding.DER))
    assert_svid(res, default_id(leaf), s.bundle_pem)


def test_login_path_template(tmp_path, pki):
    s = h.Server(tmp_path).start()
    try:
        s.set_policy(h.policy_doc(pki.root.pem,
                                  template="/agents/{{x509_pop.subject.common_name}}/"
                                           "{{x509_pop.san.env}}"))
        leaf = pki.leaf(uris=["x509pop://%s/env/prod" % h.TD])
        res = h.login(s, leaf.key, pki.evidence(leaf))
        assert_svid(res, "spiffe://%s/agents/node-1.example.org/prod" % h.TD, s.bundle_pem)

        # the attribute is missing: a clear message, on both sides
        leaf2 = pki.leaf(cn="node-2")
        res = h.login(s, leaf2.key, pki.evidence(leaf2))
        assert res.status == h.PERMISSION_DENIED
        assert res.message == ("cannot make the agent's SPIFFE ID: "
                               'attribute "x509_pop.san.env" is missing')
        s.wait_log("Login failed: cannot make the agent's SPIFFE ID")

        # a value that cannot make a path segment
        leaf3 = pki.leaf(cn="bad name", uris=["x509pop://%s/env/prod" % h.TD])
        res = h.login(s, leaf3.key, pki.evidence(leaf3))
        assert res.status == h.PERMISSION_DENIED
        assert res.message.startswith("cannot make the agent's SPIFFE ID: attribute "
                                      '"x509_pop.subject.common_name" value "bad name"')
    finally:
        s.stop()


def test_policies_or_across(tmp_path, pki):
    """Two policies, two CAs: an agent of either CA logs in."""
    other = h.Pki("Other Root")
    s = h.Server(tmp_path).start()
    try:
        extra = h.policy_doc(other.root.pem, name="second").split("policies:\n", 1)[1]
        s.set_policy(h.policy_doc(pki.root.pem) + extra)
        for p in (pki, other):
            leaf = p.leaf()
            assert h.login(s, leaf.key, p.evidence(leaf)).status == h.OK
    finally:
        s.stop()


# --- refused before any attestor runs --------------------------------------------------


def test_wrong_cluster_id(server_with_policy, pki):
    s = server_with_policy
    leaf = pki.leaf()
    res = h.login(s, leaf.key, pki.evidence(leaf), cluster="c-other")
    assert res.status == h.INVALID_ARGUMENT
    assert res.message == 'cluster id "c-other" does not match this server\'s cluster "%s"' \
        % h.CLUSTER
    line = s.wait_log("Login refused: wrong cluster id")
    assert line["clusterId"] == "c-other"
    assert s.metric("anchor_login_total", {"result": "failed"}) == 1


def test_no_policy_document(server, pki):
    leaf = pki.leaf()
    res = h.login(server, leaf.key, pki.evidence(leaf))
    assert res.status == h.PERMISSION_DENIED
    assert res.message == h.MSG_NO_POLICY
    line = server.wait_log(h.MSG_POLICY_NOTFOUND)
    assert line["level"] == "error" and line["documentLoaded"] is False
    assert server.find_logs("Login started with multi-attestation support")[0][
        "providedMethods"] == ["x509pop"]


def test_no_policy_matches_provided_attestors(server_with_policy, pki):
    s = server_with_policy
    leaf = pki.leaf()
    res = h.login(s, leaf.key, pki.evidence(leaf), types=("tpm",))
    assert res.status == h.PERMISSION_DENIED
    assert res.message == h.MSG_NO_POLICY
    line = s.wait_log(h.MSG_POLICY_NOTFOUND)
    assert line["providedMethods"] == ["tpm"] and line["documentLoaded"] is True


def test_no_attestors_at_all(server_with_policy):
    res = h.login(server_with_policy, None, b"", types=())
    assert res.status == h.PERMISSION_DENIED and res.message == h.MSG_NO_POLICY


@pytest.mark.parametrize("types,msg", [
    (("x509pop", "x509pop"), "attestor type given twice"),
    (("X509POP",), "invalid attestor type"),
    (("",), "invalid attestor type"),
    (tuple("t%d" % i for i in range(17)), "too many attestors"),
])
def test_bad_attestor_list(server_with_policy, pki, types, msg):
    leaf = pki.leaf()
    res = h.login(server_with_policy, leaf.key, pki.evidence(leaf), types=types)
    assert (res.status, res.message) == (h.INVALID_ARGUMENT, msg)


@pytest.mark.parametrize("kind", ["garbage", "ed25519", "rsa1024", "both"])
def test_bad_svid_key(server_with_policy, pki, kind):
    s = server_with_policy
    agent, _ = h.pb()
    leaf = pki.leaf()
    conn = s.connect()
    sid = conn.open(h.LOGIN)
    start = agent.LoginStart(cluster_id=h.CLUSTER)
    start.attestation_data.add(type="x509pop", payload=pki.evidence(leaf))
    if kind == "garbage":
        start.public_key = b"\x30\x03\x02\x01\x01"
    elif kind == "ed25519":
        start.public_key = h.spki(ed25519.Ed25519PrivateKey.generate())
    elif kind == "rsa1024":
        start.public_key = h.spki(h.rsa_key(1024))
    else:
        start.public_key = h.spki(h.ec_key())
        start.csr = b"\x30\x00"
    conn.send_msg(sid, agent.LoginRequest(start=start).SerializeToString())
    conn.wait(lambda: conn.streams[sid].ended)
    st = conn.streams[sid]
    conn.close()
    assert st.status == h.INVALID_ARGUMENT
    if kind == "both":
        assert st.message == "invalid SVID key: exactly one of public_key and csr must be set"
    else:
        assert st.message.startswith("invalid SVID key: ")


# --- x509pop refuses the chain -----------------------------------------------------------


def chain_case(pki, kind):
    if kind == "unknown_ca":
        other = h.Pki("Stranger Root")
        leaf = other.leaf()
        return leaf, other.evidence(leaf), "certificate chain verification failed", \
            "unable to get local issuer certificate"
    if kind == "no_intermediate":
        leaf = pki.leaf()
        return leaf, leaf.der, "certificate chain verification failed", \
            "unable to get local issuer certificate"
    if kind == "expired":
        leaf = pki.leaf(not_before=h.NOW - 10 * h.DAY, not_after=h.NOW - h.DAY)
        return leaf, pki.evidence(leaf), "certificate chain verification failed", \
            "certificate has expired"
    if kind == "no_digital_signature":
        leaf = pki.leaf(digital_signature=False)
        return leaf, pki.evidence(leaf), \
            "certificate does not include digitalSignature key usage", None
    if kind == "too_many_intermediates":
        leaf = pki.leaf()
        return leaf, leaf.der + pki.inter.der * 6, "certificate chain verification failed", \
            "too many intermediates"
    if kind == "garbage":
        return None, b"\x30\x82\xff\xff garbage", h.MSG_REJECTED, None
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["unknown_ca", "no_intermediate", "expired",
                                  "no_digital_signature", "too_many_intermediates", "garbage"])
def test_chain_rejected(server_with_policy, pki, kind):
    s = server_with_policy
    leaf, evidence, log_msg, detail = chain_case(pki, kind)
    res = h.login(s, leaf.key if leaf else None, evidence)
    assert (res.status, res.message) == (h.PERMISSION_DENIED, h.MSG_REJECTED)
    line = s.wait_log(log_msg)
    assert line["attestorType"] == "x509pop"
    assert line["level"] == "error"
    if detail:
        assert line["error"].startswith(log_msg + ": ")
        assert detail in line["error"]
    assert s.metric("anchor_attestation_agent_proof_total",
                    {"attestor_type": "x509pop", "outcome": "failed"}) == 1
    assert s.metric("anchor_login_total", {"result": "failed"}) == 1
    assert not s.find_logs("Authorization received and verified")


# --- challenge and proof ------------------------------------------------------------------


def test_bad_proof_wrong_key(server_with_policy, pki):
    s = server_with_policy
    leaf = pki.leaf()
    res = h.login(s, h.ec_key(), pki.evidence(leaf))
    assert (res.status, res.message) == (h.PERMISSION_DENIED, h.MSG_BAD_PROOF)
    line = s.wait_log("failed to verify signature")
    assert line["attestorType"] == "x509pop" and line["level"] == "error"
    assert s.metric("anchor_attestation_agent_proof_total",
                    {"attestor_type": "x509pop", "outcome": "failed"}) == 1
    assert not s.find_logs("Connected to agent")


@pytest.mark.parametrize("kind", ["empty", "truncated", "trailing", "nonce_echo", "short_nonce",
                                  "wrong_type"])
def test_bad_proof_forms(server_with_policy, pki, kind):
    s = server_with_policy
    leaf = pki.leaf()
    agent, _ = h.pb()

    def proof(ch, exporter):
        good = h.sign_proof(leaf.key, ch.nonce, exporter)
        if kind == "empty":
            return b""
        if kind == "truncated":
            return good[:-3]
        if kind == "trailing":
            return good + b"\0"
        if kind == "nonce_echo":
            return h.sign_proof(leaf.key, ch.nonce, exporter, agent_nonce=ch.nonce)
        if kind == "short_nonce":
            return h.sign_proof(leaf.key, ch.nonce, exporter, agent_nonce=b"\1" * 16)
        return good

    if kind == "wrong_type":
        conn = s.connect()
        sid = conn.open(h.LOGIN)
        start = agent.LoginStart(cluster_id=h.CLUSTER, public_key=h.spki(h.ec_key()))
        start.attestation_data.add(type="x509pop", payload=pki.evidence(leaf))
        conn.send_msg(sid, agent.LoginRequest(start=start).SerializeToString())
        ch = agent.LoginResponse.FromString(conn.next_msg(sid)).challenges.challenges[0]
        proofs = agent.LoginProofs()
        proofs.responses.add(type="tpm", payload=h.sign_proof(leaf.key, ch.nonce, conn.exporter))
        conn.send_msg(sid, agent.LoginRequest(proofs=proofs).SerializeToString())
        conn.wait(lambda: conn.streams[sid].ended)
        res = conn.streams[sid]
        conn.close()
    else:
        res = h.login(s, leaf.key, pki.evidence(leaf), proof=proof)
    assert (res.status, res.message) == (h.PERMISSION_DENIED, h.MSG_BAD_PROOF)
    assert s.wait_log("failed to verify signature")["attestorType"] == "x509pop"


def test_replayed_proof_on_new_connection(server_with_policy, pki):
    """An honest proof recorded on connection A is worthless on connection B:
    another nonce and another exporter."""
    s = server_with_policy
    leaf = pki.leaf()
    recorded = []

    def record(ch, exporter):
        p = h.sign_proof(leaf.key, ch.nonce, exporter)
        recorded.append(p)
        return p

    assert h.login(s, leaf.key, pki.evidence(leaf), proof=record).status == h.OK
    res = h.login(s, leaf.key, pki.evidence(leaf), proof=lambda ch, ex: recorded[0])
    assert (res.status, res.message) == (h.PERMISSION_DENIED, h.MSG_BAD_PROOF)
    s.wait_log("failed to verify signature")


def test_relayed_challenge_other_exporter(server_with_policy, pki):
    """A relay forwards B's nonce to the real agent, which signs it on its own
    connection A: the exporter differs, the proof fails on B."""
    s = server_with_policy
    leaf = pki.leaf()
    conn_a = s.connect()
    try:
        res = h.login(s, leaf.key, pki.evidence(leaf),
                      proof=lambda ch, ex_b: h.sign_proof(leaf.key, ch.nonce, conn_a.exporter))
    finally:
        conn_a.close()
    assert (res.status, res.message) == (h.PERMISSION_DENIED, h.MSG_BAD_PROOF)


def test_second_proof_on_same_stream_impossible(server_with_policy, pki):
    """After a failed proof the stream (and its nonce) is gone: a second
    LoginProofs finds a closed stream."""
    s = server_with_policy
    agent, _ = h.pb()
    leaf = pki.leaf()
    conn = s.connect()
    sid = conn.open(h.LOGIN)
    start = agent.LoginStart(cluster_id=h.CLUSTER, public_key=h.spki(h.ec_key()))
    start.attestation_data.add(type="x509pop", payload=pki.evidence(leaf))
    conn.send_msg(sid, agent.LoginRequest(start=start).SerializeToString())
    ch = agent.LoginResponse.FromString(conn.next_msg(sid)).challenges.challenges[0]
    bad = agent.LoginProofs()
    bad.responses.add(type="x509pop", payload=h.sign_proof(h.ec_key(), ch.nonce, conn.exporter))
    good = agent.LoginProofs()
    good.responses.add(type="x509pop", payload=h.sign_proof(leaf.key, ch.nonce, conn.exporter))
    conn.send_msg(sid, agent.LoginRequest(proofs=bad).SerializeToString())
    conn.send_msg(sid, agent.LoginRequest(proofs=good).SerializeToString())
    conn.wait(lambda: conn.streams[sid].ended)
    st = conn.streams[sid]
    conn.close()
    assert (st.status, st.message) == (h.PERMISSION_DENIED, h.MSG_BAD_PROOF)
    assert not st.msgs
    assert not s.find_logs("Connected to agent")


# --- timeouts and malformed streams ------------------------------------------------------------


@pytest.fixture
def quick_server(tmp_path, pki):
    s = h.Server(tmp_path, extra_args=["--login-timeout", "1s"]).start()
    s.set_policy(h.policy_doc(pki.root.pem))
    yield s
    s.stop()


def test_login_never_answers(quick_server, pki):
    s = quick_server
    agent, _ = h.pb()
    leaf = pki.leaf()
    conn = s.connect()
    sid = conn.open(h.LOGIN)
    start = agent.LoginStart(cluster_id=h.CLUSTER, public_key=h.spki(h.ec_key()))
    start.attestation_data.add(type="x509pop", payload=pki.evidence(leaf))
    t0 = time.monotonic()
    conn.send_msg(sid, agent.LoginRequest(start=start).SerializeToString())
    ch = agent.LoginResponse.FromString(conn.next_msg(sid)).challenges.challenges[0]
    assert conn.wait(lambda: conn.streams[sid].ended, timeout=10)
    took = time.monotonic() - t0
    st = conn.streams[sid]
    assert (st.status, st.message) == (h.DEADLINE_EXCEEDED, "login timed out")
    assert 0.8 <= took < 5
    assert s.wait_log("Login timed out")["timeoutMs"] == 1000
    # the late proof, on a new stream of the same connection: a new login
    # gets a new nonce; the old one is not accepted
    res = h.login(s, leaf.key, pki.evidence(leaf), conn=conn,
                  proof=lambda c, ex: h.sign_proof(leaf.key, ch.nonce, ex))
    assert (res.status, res.message) == (h.PERMISSION_DENIED, h.MSG_BAD_PROOF)
    conn.close()
    assert s.metric("anchor_login_total", {"result": "failed"}) == 2


def test_login_never_starts(quick_server):
    conn = quick_server.connect()
    sid = conn.open(h.LOGIN)
    assert conn.wait(lambda: conn.streams[sid].ended, timeout=10)
    st = conn.streams[sid]
    assert (st.status, st.message) == (h.DEADLINE_EXCEEDED, "login timed out")
    conn.close()


def test_agent_cancels_login(quick_server, pki):
    s = quick_server
    conn = s.connect()
    sid = conn.open(h.LOGIN)
    conn.cancel(sid)
    s.wait_log("Login abandoned")
    conn.close()


def test_half_close_before_proofs(server_with_policy, pki):
    s = server_with_policy
    agent, _ = h.pb()
    leaf = pki.leaf()
    conn = s.connect()
    sid = conn.open(h.LOGIN)
    start = agent.LoginStart(cluster_id=h.CLUSTER, public_key=h.spki(h.ec_key()))
    start.attestation_data.add(type="x509pop", payload=pki.evidence(leaf))
    conn.send_msg(sid, agent.LoginRequest(start=start).SerializeToString(), end=True)
    conn.wait(lambda: conn.streams[sid].ended)
    st = conn.streams[sid]
    conn.close()
    assert (st.status, st.message) == (h.INVALID_ARGUMENT,
                                       "login stream closed before the login completed")


@pytest.mark.parametrize("kind", ["malformed", "proofs_first", "empty_step", "start_twice"])
def test_unexpected_messages(server_with_policy, pki, kind):
    s = server_with_policy
    agent, _ = h.pb()
    leaf = pki.leaf()
    start = agent.LoginStart(cluster_id=h.CLUSTER, public_key=h.spki(h.ec_key()))
    start.attestation_data.add(type="x509pop", payload=pki.evidence(leaf))
    conn = s.connect()
    sid = conn.open(h.LOGIN)
    if kind == "malformed":
        conn.send_msg(sid, b"\x0a\xff\xff\xff")
        want = (h.INVALID_ARGUMENT, "malformed LoginRequest")
    elif kind == "proofs_first":
        conn.send_msg(sid, agent.LoginRequest(proofs=agent.LoginProofs()).SerializeToString())
        want = (h.INVALID_ARGUMENT, "expected LoginStart")
    elif kind == "empty_step":
        conn.send_msg(sid, b"")
        want = (h.INVALID_ARGUMENT, "expected LoginStart")
    else:
        conn.send_msg(sid, agent.LoginRequest(start=start).SerializeToString())
        conn.next_msg(sid)
        conn.send_msg(sid, agent.LoginRequest(start=start).SerializeToString())
        want = (h.INVALID_ARGUMENT, "expected LoginProofs")
    conn.wait(lambda: conn.streams[sid].ended)
    st = conn.streams[sid]
    conn.close()
    assert (st.status, st.message) == want


def test_oversized_message(server_with_policy, pki):
    s = server_with_policy
    agent, _ = h.pb()
    start = agent.LoginStart(cluster_id=h.CLUSTER, public_key=h.spki(h.ec_key()))
    start.attestation_data.add(type="x509pop", payload=b"\x30" * (3 * 1024 * 1024))
    conn = s.connect()
    sid = conn.open(h.LOGIN)
    conn.send_msg(sid, agent.LoginRequest(start=start).SerializeToString())
    conn.wait(lambda: conn.streams[sid].ended, timeout=20)
    st = conn.streams[sid]
    conn.close()
    assert st.status == h.RESOURCE_EXHAUSTED
    # the server is fine afterwards
    leaf = pki.leaf()
    assert h.login(s, leaf.key, pki.evidence(leaf)).status == h.OK


def test_oversized_evidence_under_message_limit(server_with_policy, pki):
    """1.5 MiB of evidence: within the message limit, over the engine's."""
    res = h.login(server_with_policy, None, b"\x30" * (1536 * 1024))
    assert (res.status, res.message) == (h.PERMISSION_DENIED, h.MSG_REJECTED)


def test_login_without_tls_alpn_is_refused(server_with_policy):
    """A plain TCP (non-TLS) HTTP/2 client gets nowhere."""
    import socket
    sock = socket.create_connection(("127.0.0.1", server_with_policy.port), timeout=5)
    sock.sendall(h.PREFACE)
    sock.settimeout(15)
    try:
        data = sock.recv(100)
    except (ConnectionResetError, TimeoutError, OSError):
        data = b""
    sock.close()
    assert b"SETTINGS" not in data and not data.startswith(b"\x00\x00")


# --- snapshots, bans, renewals --------------------------------------------------------------


def test_login_in_flight_keeps_its_snapshot(server_with_policy, pki):
    s = server_with_policy
    agent, _ = h.pb()
    leaf = pki.leaf()
    conn = s.connect()
    sid = conn.open(h.LOGIN)
    start = agent.LoginStart(cluster_id=h.CLUSTER, public_key=h.spki(h.ec_key()))
    start.attestation_data.add(type="x509pop", payload=pki.evidence(leaf))
    conn.send_msg(sid, agent.LoginRequest(start=start).SerializeToString())
    ch = agent.LoginResponse.FromString(conn.next_msg(sid)).challenges.challenges[0]
    # the policy now trusts another CA only
    s.set_policy(h.policy_doc(h.Pki("Other").root.pem))
    proofs = agent.LoginProofs()
    proofs.responses.add(type="x509pop", payload=h.sign_proof(leaf.key, ch.nonce, conn.exporter))
    conn.send_msg(sid, agent.LoginRequest(proofs=proofs).SerializeToString())
    conn.wait(lambda: conn.streams[sid].ended)
    st = conn.streams[sid]
    conn.close()
    assert st.status == h.OK, st.message
    # a new login runs on the new snapshot
    res = h.login(s, leaf.key, pki.evidence(leaf))
    assert (res.status, res.message) == (h.PERMISSION_DENIED, h.MSG_REJECTED)


def renew(s, res, new_key=None, path=h.RENEW):
    agent, _ = h.pb()
    conn = s.connect(client_chain_der=list(res.result.svid.cert_chain), client_key=res.svid_key)
    try:
        if path == h.RENEW:
            req = agent.RenewRequest(public_key=h.spki(new_key or h.ec_key()))
        else:
            req = agent.FetchBundleRequest()
        st = conn.unary(path, req.SerializeToString())
    finally:
        conn.close()
    return st


def test_banned_agent_refused_at_login_and_renewal(server_with_policy, pki):
    s = server_with_policy
    leaf = pki.leaf()
    res = h.login(s, leaf.key, pki.evidence(leaf))
    assert res.status == h.OK
    spiffe_id = res.result.svid.spiffe_id
    s.ban(spiffe_id)
    again = h.login(s, leaf.key, pki.evidence(leaf))
    assert (again.status, again.message) == (h.PERMISSION_DENIED, "agent is banned")
    assert s.wait_log("Login refused: agent is banned")["spiffeId"] == spiffe_id
    st = renew(s, res)
    assert (st.status, st.message) == (h.PERMISSION_DENIED, "agent is banned")
    st = renew(s, res, path=h.FETCH_BUNDLE)
    assert (st.status, st.message) == (h.PERMISSION_DENIED, "agent is banned")
    s.ban(spiffe_id, banned=False)
    assert h.login(s, leaf.key, pki.evidence(leaf)).status == h.OK


def test_renew_and_fetch_bundle(server_with_policy, pki):
    s = server_with_policy
    agent, _ = h.pb()
    leaf = pki.leaf()
    res = h.login(s, leaf.key, pki.evidence(leaf))
    new_key = h.ec_key()
    st = renew(s, res, new_key)
    assert st.status == h.OK, st.message
    out = agent.RenewResponse.FromString(st.msgs[0])
    assert out.svid.spiffe_id == res.result.svid.spiffe_id
    cert = x509.load_der_x509_certificate(out.svid.cert_chain[0])
    assert cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
        h.spki(new_key)
    assert s.get_agent(out.svid.spiffe_id).svid_serial == "%x" % cert.serial_number or \
        int(s.get_agent(out.svid.spiffe_id).svid_serial, 16) == cert.serial_number
    s.wait_log("Renewed agent SVID")
    assert s.metric("anchor_svid_issued_total") == 2

    # the renewed SVID renews again
    res.result.svid.CopyFrom(out.svid)
    res.svid_key = new_key
    assert renew(s, res).status == h.OK

    st = renew(s, res, path=h.FETCH_BUNDLE)
    assert st.status == h.OK
    b = agent.FetchBundleResponse.FromString(st.msgs[0]).bundle
    assert b.trust_domain == h.TD
    assert [x509.load_der_x509_certificate(d) for d in b.roots] == h.pem_certs(s.bundle_pem)


def test_renew_requires_client_certificate(server_with_policy):
    agent, _ = h.pb()
    conn = server_with_policy.connect()
    st = conn.unary(h.RENEW, agent.RenewRequest(public_key=h.spki(h.ec_key())).SerializeToString())
    conn.close()
    assert (st.status, st.message) == (
        h.UNAUTHENTICATED, "a client certificate (the agent's X.509 SVID) is required")


def test_renew_with_foreign_certificate_fails_handshake(server_with_policy, pki):
    leaf = pki.leaf()
    with pytest.raises(Exception):
        conn = server_with_policy.connect(client_chain_der=[leaf.der, pki.inter.der],
                                          client_key=leaf.key)
        agent, _ = h.pb()
        st = conn.unary(h.RENEW, agent.RenewRequest(
            public_key=h.spki(h.ec_key())).SerializeToString(), timeout=5)
        conn.close()
        assert st.status == h.OK  # not reached: the handshake or the call fails
        raise AssertionError("foreign certificate accepted")


def test_renew_bad_key(server_with_policy, pki):
    s = server_with_policy
    agent, _ = h.pb()
    leaf = pki.leaf()
    res = h.login(s, leaf.key, pki.evidence(leaf))
    conn = s.connect(client_chain_der=list(res.result.svid.cert_chain), client_key=res.svid_key)
    st = conn.unary(h.RENEW, agent.RenewRequest().SerializeToString())
    conn.close()
    assert (st.status, st.message) == (
        h.INVALID_ARGUMENT, "invalid SVID key: exactly one of public_key and csr must be set")


def test_restart_keeps_agents_and_ca(tmp_path, pki):
    s = h.Server(tmp_path).start()
    s.set_policy(h.policy_doc(pki.root.pem))
    leaf = pki.leaf()
    res = h.login(s, leaf.key, pki.evidence(leaf))
    assert res.status == h.OK
    s.stop()
    s.start()
    # the policy comes back from the store, the agent's SVID still renews
    s.wait_log("Loaded AgentAttestation document")
    assert renew(s, res).status == h.OK
    assert h.login(s, leaf.key, pki.evidence(leaf)).status == h.OK
    s.stop()


def test_many_logins_on_one_connection(server_with_policy, pki):
    s = server_with_policy
    conn = s.connect()
    try:
        for i in range(20):
            leaf = pki.leaf(cn="node-%d" % i)
            assert h.login(s, leaf.key, pki.evidence(leaf), conn=conn).status == h.OK
    finally:
        conn.close()
    assert s.metric("anchor_login_total", {"result": "success"}) == 20
    assert s.metric("anchor_connected_agents") == 20


def test_upstream_ca(tmp_path, pki):
    """With an upstream CA (root -> intermediate that signs SVIDs) the SVID
    chain carries the intermediate, the bundle holds the root, and the SVID
    renews over mTLS with that chain."""
    up_root = h.make_cert("Upstream Root", h.ec_key(), ca=True)
    up_inter = h.make_cert("Upstream Intermediate", h.ec_key(), issuer=up_root, ca=True)
    chain = tmp_path / "upstream.pem"
    chain.write_text(up_inter.pem + up_root.pem)
    key = tmp_path / "upstream.key"
    key.write_text(up_inter.key_pem())
    os.chmod(key, 0o600)
    # the agent verifies the server against the upstream root
    s = h.Server(tmp_path, extra_args=["--ca-upstream-cert", str(chain),
                                       "--ca-upstream-key", str(key)])
    s.start()
    try:
        assert s.find_logs("Server started")[0]["caMode"] == "upstream"
        s.set_policy(h.policy_doc(pki.root.pem))
        leaf = pki.leaf()
        conn = h.AgentConn(s.port, up_root.pem)
        res = h.login(s, leaf.key, pki.evidence(leaf), conn=conn)
        conn.close()
        assert res.status == h.OK, res.message
        certs = [x509.load_der_x509_certificate(d) for d in res.result.svid.cert_chain]
        assert len(certs) == 2 and certs[1] == up_inter.cert
        assert [x509.load_der_x509_certificate(d) for d in res.result.bundle.roots] == \
            [up_root.cert]
        agent, _ = h.pb()
        conn = h.AgentConn(s.port, up_root.pem, client_chain_der=list(res.result.svid.cert_chain),
                           client_key=res.svid_key)
        st = conn.unary(h.RENEW, agent.RenewRequest(public_key=h.spki(h.ec_key()))
                        .SerializeToString())
        conn.close()
        assert st.status == h.OK, st.message
    finally:
        s.stop()
