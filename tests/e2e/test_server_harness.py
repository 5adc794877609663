"""The harness of the anchor-server end-to-end tests, and its own tests.

Everything here talks to a real anchor-server process on loopback:

* `Pki`: agent PKIs made with python3-cryptography (roots, intermediates,
  leaves with or without digitalSignature, EC or RSA), so each test says what
  its certificates are.
* `Server`: starts anchor-server in a temporary directory with ports chosen by
  the kernel (read back from the "Server started" log line), collects its
  JSON log lines, and applies AgentAttestation documents through the admin
  API (python3-grpc on the unix socket).
* `AgentConn`: an agent-API client built by hand on pyOpenSSL and HTTP/2
  frames, because python's grpcio cannot give the TLS exporter (RFC 9266)
  that an x509pop proof signs, and cannot verify a server certificate that
  carries only a SPIFFE ID. It verifies the server's chain against the trust
  bundle and its URI SAN spiffe://<td>/server, and can present a client
  certificate (the agent SVID) for RenewSVID / FetchBundle.

Python code for proto/agent.proto and proto/admin.proto is generated at test
time with protoc (Debian's protobuf-compiler).

ctest sets ANCHOR_BINARY_DIR; by hand the default is build/server.
"""

import datetime
import hashlib
import importlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

import hpack
from OpenSSL import SSL, crypto
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.environ.get("ANCHOR_BINARY_DIR", os.path.join(_REPO, "build", "server"))
SERVER_BIN = os.path.join(BIN_DIR, "anchor-server")
AGENT_BIN = os.path.join(BIN_DIR, "anchor-agent")
CTL_BIN = os.path.join(BIN_DIR, "anchorctl")
TD = "example.org"
CLUSTER = "c-8f2k1q"
NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
DAY = datetime.timedelta(days=1)

LOGIN = "/anchor.agent.v1.AgentAPI/Login"
RENEW = "/anchor.agent.v1.AgentAPI/RenewSVID"
FETCH_BUNDLE = "/anchor.agent.v1.AgentAPI/FetchBundle"

# gRPC status codes
OK, CANCELLED, INVALID_ARGUMENT, DEADLINE_EXCEEDED = 0, 1, 3, 4
PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION = 7, 8, 9
INTERNAL, UNAVAILABLE, UNAUTHENTICATED = 13, 14, 16

MSG_NO_POLICY = "no cluster policy authorizes the provided attestors"
MSG_POLICY_NOTFOUND = "attestation policy not found or no matching policy"
MSG_REJECTED = "Attestor rejected proof, policy failed"
MSG_BAD_PROOF = "Authorization failed: challenge response failed validation"


# --- generated protobuf code -----------------------------------------------------

_PB = {}


def pb():
    """(agent_pb2, admin_pb2), generated once per process with protoc."""
    if not _PB:
        assert shutil.which("protoc"), "protoc missing: apt-get install protobuf-compiler"
        out = tempfile.mkdtemp(prefix="anchor-pb-")
        protos = [p for p in ("agent.proto", "admin.proto")
                  if os.path.exists(os.path.join(_REPO, "proto", p))]
        subprocess.run(["protoc", "--proto_path=" + os.path.join(_REPO, "proto"),
                        "--python_out=" + out] + protos, check=True)
        sys.path.insert(0, out)
        _PB["agent"] = importlib.import_module("agent_pb2")
        _PB["admin"] = importlib.import_module("admin_pb2") if "admin.proto" in protos else None
    return _PB["agent"], _PB["admin"]


# --- PKI ---------------------------------------------------------------------------


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key(bits=2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


class Cert:
    def __init__(self, cert, key):
        self.cert = cert
        self.key = key

    @property
    def der(self):
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def sha1(self):
        return hashlib.sha1(self.der).hexdigest()

    @property
    def serial(self):
        h = "%x" % self.cert.serial_number
        return h if len(h) % 2 == 0 else "0" + h

    def key_pem(self):
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(cn, key, issuer=None, ca=False, digital_signature=True, key_usage=True,
              not_before=None, not_after=None, uris=(), path_len=None):
    """A certificate for key, signed by issuer (a Cert) or self-signed."""
    pub = key.public_key()
    signer_key = issuer.key if issuer else key
    b = (x509.CertificateBuilder()
         .subject_name(_name(cn))
         .issuer_name(issuer.cert.subject if issuer else _name(cn))
         .public_key(pub)
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before or NOW - DAY)
         .not_valid_after(not_after or NOW + 30 * DAY)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             signer_key.public_key()), critical=False))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
        b = b.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        if key_usage:
            b = b.add_extension(x509.KeyUsage(
                digital_signature=digital_signature, content_commitment=False,
                key_encipherment=not digital_signature, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False,
                decipher_only=False), critical=True)
        if uris:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(u) for u in uris]), critical=False)
    return Cert(b.sign(signer_key, hashes.SHA256()), key)


class Pki:
    """root -> intermediate -> leaves."""

    def __init__(self, name="Agent Root"):
        self.root = make_cert(name, ec_key(), ca=True)
        self.inter = make_cert(name + " Intermediate", ec_key(), issuer=self.root, ca=True)

    def leaf(self, cn="node-1.example.org", key=None, **kw):
        return make_cert(cn, key or ec_key(), issuer=self.inter, **kw)

    def evidence(self, leaf):
        """The x509pop evidence wire form: DER leaf then intermediates."""
        return leaf.der + self.inter.der


def policy_doc(ca_pems, name="x509pop_policy", template=None, extra_policies=""):
    """An AgentAttestation v1 document trusting ca_pems."""
    if isinstance(ca_pems, str):
        ca_pems = [ca_pems]
    pem = "".join(ca_pems)
    body = "\n".join("            " + line for line in pem.strip().splitlines())
    lines = ["section: AgentAttestation", "schema: v1", "spec:", "  policies:",
             "    - name: %s" % name]
    if template:
        lines.append('      agentPathTemplate: "%s"' % template)
    lines += ["      requiredAttestors:", "        - type: x509pop", "          config:",
              "            caCerts: |"]
    return "\n".join(lines) + "\n" + "\n".join("  " + l for l in body.splitlines()) + "\n" \
        + extra_policies


# --- the x509pop proof, agent side --------------------------------------------------

LABEL = b"anchor x509pop v1"


def sign_proof(key, server_nonce, exporter, agent_nonce=None):
    """The proof wire form: u16 len || agent nonce || u16 len || signature."""
    agent_nonce = agent_nonce or os.urandom(32)
    msg = LABEL + server_nonce + agent_nonce + exporter
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(msg, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                       hashes.SHA256())
    else:
        sig = key.sign(msg, ec.ECDSA(hashes.SHA256()))
    return struct.pack(">H", len(agent_nonce)) + agent_nonce + struct.pack(">H", len(sig)) + sig


def spki(key):
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


# --- HTTP/2 + gRPC over pyOpenSSL ------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
F_DATA, F_HEADERS, F_RST, F_SETTINGS, F_PING, F_GOAWAY, F_WINDOW, F_CONT = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20


def _frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


def pem_certs(text):
    """Every CERTIFICATE block of a PEM text."""
    out, end = [], "-----END CERTIFICATE-----"
    for part in text.split(end)[:-1]:
        out.append(x509.load_pem_x509_certificate((part.strip() + "\n" + end + "\n").encode()))
    return out


def grpc_msg(payload):
    return struct.pack(">BI", 0, len(payload)) + payload


class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.headers = None
        self.trailers = None
        self.buf = b""
        self.msgs = []
        self.ended = False
        self.rst = None

    def _meta(self, name):
        for block in (self.trailers, self.headers):
            for k, v in block or ():
                if k == name:
                    return v
        return None

    @property
    def status(self):
        v = self._meta("grpc-status")
        return int(v) if v is not None else None

    @property
    def message(self):
        v = self._meta("grpc-message") or ""
        return urllib.request.unquote(v)


class AgentConn:
    """One TLS 1.3 + HTTP/2 connection to the agent API."""

    def __init__(self, port, bundle_pem, client_chain_der=None, client_key=None, timeout=10):
        ctx = SSL.Context(SSL.TLS_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        ctx.set_alpn_protos([b"h2"])
        store = ctx.get_cert_store()
        for c in pem_certs(bundle_pem):
            store.add_cert(crypto.X509.from_cryptography(c))
        ctx.set_verify(SSL.VERIFY_PEER, lambda conn, cert, errno, depth, ok: bool(ok))
        if client_chain_der:
            ctx.use_certificate(crypto.X509.from_cryptography(
                x509.load_der_x509_certificate(client_chain_der[0])))
            for der in client_chain_der[1:]:
                ctx.add_extra_chain_cert(crypto.X509.from_cryptography(
                    x509.load_der_x509_certificate(der)))
            ctx.use_privatekey(crypto.PKey.from_cryptography_key(client_key))
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.conn = SSL.Connection(ctx, self.raw)
        self.conn.set_connect_state()
        self.conn.set_tlsext_host_name(b"localhost")
        self.raw.setblocking(False)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.conn.do_handshake()
                break
            except SSL.WantReadError:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.raw], [], [], left)[0]:
                    raise TimeoutError("TLS handshake timed out")
        self.raw.setblocking(True)
        peer = self.conn.get_peer_certificate().to_cryptography()
        uris = peer.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(
            x509.UniformResourceIdentifier)
        assert uris == ["spiffe://%s/server" % TD], uris
        self.exporter = self.conn.export_keying_material(b"EXPORTER-Channel-Binding", 32)
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.inbuf = b""
        self.streams = {}
        self.next_sid = 1
        self.eof = False
        self.goaway = None
        self._pending = None
        self.send(PREFACE + _frame(F_SETTINGS, 0, 0, struct.pack(">HI", 4, 1 << 24)) +
                  _frame(F_WINDOW, 0, 0, struct.pack(">I", (1 << 30))))

    def send(self, data):
        self.conn.sendall(data)

    def open(self, path, timeout=None):
        sid = self.next_sid
        self.next_sid += 2
        self.streams[sid] = Stream(sid)
        hdrs = [(":method", "POST"), (":scheme", "https"), (":path", path),
                (":authority", "localhost"), ("content-type", "application/grpc"),
                ("te", "trailers")]
        if timeout:
            hdrs.append(("grpc-timeout", timeout))
        self.send(_frame(F_HEADERS, END_HEADERS, sid, self.enc.encode(hdrs)))
        return sid

    def send_msg(self, sid, payload, end=False, max_frame=16384):
        data = grpc_msg(payload)
        out = b""
        for i in range(0, max(len(data), 1), max_frame):
            chunk = data[i:i + max_frame]
            last = i + max_frame >= len(data)
            out += _frame(F_DATA, END_STREAM if (end and last) else 0, sid, chunk)
        self.send(out)

    def close_send(self, sid):
        self.send(_frame(F_DATA, END_STREAM, sid, b""))

    def cancel(self, sid):
        self.send(_frame(F_RST, 0, sid, struct.pack(">I", 8)))

    def unary(self, path, payload, timeout=10):
        sid = self.open(path)
        self.send_msg(sid, payload, end=True)
        self.wait(lambda: self.streams[sid].ended, timeout)
        return self.streams[sid]

    # -- receiving

    def _read(self, timeout):
        if self.conn.pending() == 0:
            r, _, _ = select.select([self.raw], [], [], timeout)
            if not r:
                return False
        try:
            chunk = self.conn.recv(1 << 16)
        except SSL.WantReadError:
            return True
        except (SSL.ZeroReturnError, SSL.SysCallError, SSL.Error, OSError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.inbuf += chunk
        self._frames()
        return True

    def _frames(self):
        while len(self.inbuf) >= 9:
            n = struct.unpack(">I", b"\0" + self.inbuf[:3])[0]
            if len(self.inbuf) < 9 + n:
                return
            ftype, flags, sid = struct.unpack(">BBI", self.inbuf[3:9])
            payload = self.inbuf[9:9 + n]
            self.inbuf = self.inbuf[9 + n:]
            self._on_frame(ftype, flags, sid & 0x7FFFFFFF, payload)

    def _on_frame(self, ftype, flags, sid, payload):
        if ftype == F_SETTINGS and not flags & ACK:
            self.send(_frame(F_SETTINGS, ACK, 0))
        elif ftype == F_PING and not flags & ACK:
            self.send(_frame(F_PING, ACK, 0, payload))
        elif ftype == F_GOAWAY:
            self.goaway = struct.unpack(">II", payload[:8])
        elif ftype in (F_HEADERS, F_CONT):
            if ftype == F_HEADERS:
                if flags & PADDED:
                    payload = payload[1:len(payload) - payload[0]]
                if flags & PRIO:
                    payload = payload[5:]
                self._pending = [sid, flags, payload]
            else:
                self._pending[2] += payload
            if flags & END_HEADERS:
                sid, hflags, block = self._pending
                self._pending = None
                hdrs = [(k.decode() if isinstance(k, bytes) else k,
                         v.decode() if isinstance(v, bytes) else v)
                        for k, v in self.dec.decode(block, raw=True)]
                st = self.streams.setdefault(sid, Stream(sid))
                if st.headers is None:
                    st.headers = hdrs
                else:
                    st.trailers = hdrs
                if hflags & END_STREAM:
                    st.ended = True
        elif ftype == F_DATA:
            st = self.streams.get(sid)
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            if st is not None:
                st.buf += payload
                while len(st.buf) >= 5:
                    _, n = struct.unpack(">BI", st.buf[:5])
                    if len(st.buf) < 5 + n:
                        break
                    st.msgs.append(st.buf[5:5 + n])
                    st.buf = st.buf[5 + n:]
                if flags & END_STREAM:
                    st.ended = True
            if payload:
                self.send(_frame(F_WINDOW, 0, 0, struct.pack(">I", len(payload))))
                if st is not None and not st.ended:
                    self.send(_frame(F_WINDOW, 0, sid, struct.pack(">I", len(payload))))
        elif ftype == F_RST:
            st = self.streams.setdefault(sid, Stream(sid))
            st.rst = struct.unpack(">I", payload[:4])[0]
            st.ended = True

    def wait(self, cond, timeout=10):
        deadline = time.monotonic() + timeout
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                break
            self._read(min(left, 0.2))
        return cond()

    def next_msg(self, sid, timeout=10):
        """The next response message of the stream, or None once it ended."""
        st = self.streams[sid]
        self.wait(lambda: st.msgs or st.ended, timeout)
        return st.msgs.pop(0) if st.msgs else None

    def close(self):
        try:
            self.conn.shutdown()
        except SSL.Error:
            pass
        self.raw.close()


# --- the server process ---------------------------------------------------------------


class Server:
    """An anchor-server process in its own directory."""

    def __init__(self, tmp, extra_args=(), config=None, cluster=CLUSTER, data_dir=None):
        assert os.access(SERVER_BIN, os.X_OK), "no anchor-server at %s" % SERVER_BIN
        self.dir = str(tmp)
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        self.admin_sock = os.path.join(self.dir, "admin.sock")
        self.log_path = os.path.join(self.dir, "server-%d.log" % time.monotonic_ns())
        self.args = [SERVER_BIN, "--trust-domain", TD, "--cluster-id", cluster,
                     "--listen-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0",
                     "--admin-socket", self.admin_sock, "--data-dir", self.data_dir,
                     "--log-level", "debug", "--config-poll-interval", "200ms"]
        if config:
            path = os.path.join(self.dir, "server.yaml")
            with open(path, "w") as f:
                f.write(config)
            self.args += ["--config", path]
        self.args += list(extra_args)
        self.proc = None
        self.port = None
        self.metrics_port = None

    def start(self, wait=True):
        self.logf = open(self.log_path, "wb")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.logf,
                                     env=env)
        if wait:
            line = self.wait_log("Server started", timeout=30)
            self.port = line["port"]
            self.metrics_port = line["metricsPort"]
        return self

    def stop(self, check=True):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        rc = self.proc.returncode
        self.proc = None
        if check:
            assert rc == 0, "anchor-server exited %s:\n%s" % (rc, self.log_text()[-4000:])
        return rc

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def logs(self):
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"msg": line, "raw": True})
        return out

    def find_logs(self, msg):
        return [l for l in self.logs() if l.get("msg") == msg]

    def wait_log(self, msg, timeout=10, count=1, pred=None):
        deadline = time.monotonic() + timeout
        while True:
            hits = [l for l in self.find_logs(msg) if pred is None or pred(l)]
            if len(hits) >= count:
                return hits[count - 1]
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("anchor-server exited %s waiting for %r:\n%s" % (
                    self.proc.returncode, msg, self.log_text()[-4000:]))
            if time.monotonic() > deadline:
                raise AssertionError("no %r log line within %ss:\n%s" % (
                    msg, timeout, self.log_text()[-4000:]))
            time.sleep(0.05)

    @property
    def bundle_pem(self):
        with open(os.path.join(self.data_dir, "ca-cert.pem")) as f:
            return f.read()

    def connect(self, **kw):
        return AgentConn(self.port, self.bundle_pem, **kw)

    def http_get(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.metrics_port, path),
                                        timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name, labels=None):
        """The value of one sample of /metrics (0 when absent)."""
        _, text = self.http_get("/metrics")
        want = name
        if labels:
            want += "{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}"
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    # -- admin API (the teammate's proto/admin.proto) over the unix socket

    def admin(self, method, request, response_cls):
        import grpc
        with grpc.insecure_channel("unix:" + self.admin_sock) as ch:
            call = ch.unary_unary("/anchor.admin.v1.AdminAPI/" + method,
                                  request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=response_cls.FromString)
            return call(request, timeout=10)

    def set_policy(self, text, wait=True):
        _, admin = pb()
        before = len(self.find_logs("Updating configuration snapshot"))
        resp = self.admin("SetConfig", admin.SetConfigRequest(
            cluster_id=CLUSTER, section="AgentAttestation", document=text),
            admin.SetConfigResponse)
        if wait:
            self.wait_log("Updating configuration snapshot", timeout=10, count=before + 1)
        return resp

    def ban(self, spiffe_id, banned=True):
        _, admin = pb()
        if banned:
            return self.admin("BanAgent", admin.BanAgentRequest(spiffe_id=spiffe_id),
                              admin.Agent)
        return self.admin("UnbanAgent", admin.UnbanAgentRequest(spiffe_id=spiffe_id),
                          admin.Agent)

    def get_agent(self, spiffe_id):
        _, admin = pb()
        return self.admin("GetAgent", admin.GetAgentRequest(spiffe_id=spiffe_id), admin.Agent)


# --- a Login, step by step --------------------------------------------------------------


class LoginResult:
    def __init__(self, status, message, result=None, challenges=None):
        self.status = status
        self.message = message
        self.result = result
        self.challenges = challenges


def login(server, leaf_key, evidence, cluster=CLUSTER, svid_key=None, conn=None,
          types=("x509pop",), proof=None, csr=None, timeout=15):
    """Runs a whole Login on conn (or a new connection). proof(challenge,
    exporter) may replace the honest proof. Returns a LoginResult."""
    agent, _ = pb()
    own = conn is None
    conn = conn or server.connect()
    svid_key = svid_key or ec_key()
    try:
        sid = conn.open(LOGIN)
        start = agent.LoginStart(cluster_id=cluster)
        for t in types:
            start.attestation_data.add(type=t, payload=evidence)
        if csr is not None:
            start.csr = csr
        else:
            start.public_key = spki(svid_key)
        conn.send_msg(sid, agent.LoginRequest(start=start).SerializeToString())
        raw = conn.next_msg(sid, timeout)
        st = conn.streams[sid]
        if raw is None:
            conn.wait(lambda: st.ended, timeout)
            return LoginResult(st.status, st.message)
        resp = agent.LoginResponse.FromString(raw)
        assert resp.WhichOneof("step") == "challenges"
        chs = list(resp.challenges.challenges)
        proofs = agent.LoginProofs()
        for ch in chs:
            payload = proof(ch, conn.exporter) if proof else sign_proof(
                leaf_key, ch.nonce, conn.exporter)
            proofs.responses.add(type=ch.type, payload=payload)
        conn.send_msg(sid, agent.LoginRequest(proofs=proofs).SerializeToString())
        raw = conn.next_msg(sid, timeout)
        conn.wait(lambda: st.ended, timeout)
        result = agent.LoginResponse.FromString(raw).result if raw else None
        r = LoginResult(st.status, st.message, result, chs)
        r.svid_key = svid_key
        return r
    finally:
        if own:
            conn.close()


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def pki():
    return Pki()


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path).start()
    yield s
    s.stop()


@pytest.fixture
def server_with_policy(tmp_path, pki):
    s = Server(tmp_path).start()
    s.set_policy(policy_doc(pki.root.pem))
    yield s
    s.stop()


# --- the harness's own tests: start-up and configuration ---------------------------------


def run_server(*args, timeout=30):
    return subprocess.run([SERVER_BIN, *args], capture_output=True, text=True, timeout=timeout)


def test_starts_creates_ca_and_store(server):
    files = os.listdir(server.data_dir)
    assert "ca-cert.pem" in files and "ca-key.pem" in files and "anchor.db" in files
    mode = os.stat(os.path.join(server.data_dir, "ca-key.pem")).st_mode & 0o777
    assert mode == 0o600
    started = server.find_logs("Server started")[0]
    assert started["trustDomain"] == TD and started["clusterId"] == CLUSTER
    # the server certificate is verified and checked for spiffe://<td>/server
    conn = server.connect()
    conn.close()


def test_health_and_metrics(server):
    assert server.http_get("/health/live") == (200, "ok\n")
    assert server.http_get("/health/ready") == (200, "ready\n")
    code, text = server.http_get("/metrics")
    assert code == 200
    for name in ("anchor_attestation_agent_proof_total", "anchor_login_total",
                 "anchor_svid_issued_total", "anchor_login_duration_seconds",
                 "anchor_connected_agents"):
        assert "# TYPE %s " % name in text
    assert 'anchor_attestation_agent_proof_total{attestor_type="x509pop",outcome="success"} 0' \
        in text
    assert server.http_get("/nope")[0] == 404


def test_restart_keeps_ca(tmp_path):
    s = Server(tmp_path).start()
    first = s.bundle_pem
    s.stop()
    s.start()
    assert s.bundle_pem == first
    s.stop()


@pytest.mark.parametrize("args,msg", [
    ([], "trust-domain is required"),
    (["--trust-domain", "example.org"], "cluster-id is required"),
    (["--trust-domain", "Example.org", "--cluster-id", "c-1"], "trust-domain: invalid trust domain"),
    (["--trust-domain", "example.org", "--cluster-id", "c-1", "--bogus", "1"],
     'unknown flag "--bogus"'),
    (["--trust-domain", "example.org", "--cluster-id", "c-1", "--log-level", "loud"],
     "--log-level: unknown log level loud"),
    (["--trust-domain", "example.org", "--cluster-id", "c-1", "--log-format", "xml"],
     "--log-format: unknown log format xml"),
    (["--trust-domain", "example.org", "--cluster-id", "c-1", "--ca-key-type", "ed25519"],
     '--ca-key-type: unknown key type "ed25519"'),
    (["--trust-domain", "example.org", "--cluster-id", "c-1", "--login-timeout", "soon"],
     '--login-timeout: invalid duration "soon"'),
    (["--trust-domain", "example.org", "--cluster-id", "c-1", "--listen-address", "nope"],
     "listen-address: invalid address"),
    (["--trust-domain", "example.org", "--cluster-id", "c-1", "--ca-upstream-cert", "/x"],
     "ca.upstream-cert and ca.upstream-key must be given together"),
    (["--trust-domain", "example.org", "--cluster-id", "c-1", "--datastore", "mysql://x"],
     'datastore: unsupported URL "mysql://x"'),
])
def test_flag_errors(args, msg):
    r = run_server(*args)
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr


@pytest.mark.parametrize("text,msg", [
    ("trust-domain: example.org\ncluster-id: c-1\nlisten-adress: 1\n",
     'line 3: unknown key "listen-adress"'),
    ("trust-domain: example.org\ncluster-id: c-1\ncluster-id: c-2\n",
     'line 3: duplicate key "cluster-id"'),
    ("trust-domain: example.org\ncluster-id: c-1\nca:\n  key-typ: ec-p256\n",
     'line 4: unknown key "ca.key-typ"'),
    ("trust-domain: example.org\ncluster-id: c-1\nca: ec-p256\n", "ca: expected a mapping"),
    ("trust-domain: example.org\ncluster-id: [a]\n", "cluster-id: expected a scalar value"),
    ("trust-domain: &x example.org\ncluster-id: *x\n", "YAML anchors and aliases are not allowed"),
    ("trust-domain: !!str example.org\n", "YAML tags are not allowed"),
    ("trust-domain: example.org\n---\ncluster-id: c\n", "more than one YAML document"),
    ("trust-domain: example.org\n  bad: [\n", "invalid YAML at line"),
    ("- a\n- b\n", "expected a mapping of settings"),
    ("trust-domain: example.org\ncluster-id: c-1\nca:\n  key-type: rsa-4096\n",
     'ca.key-type: unknown key type "rsa-4096"'),
])
def test_config_file_errors(tmp_path, text, msg):
    path = tmp_path / "server.yaml"
    path.write_text(text)
    r = run_server("--config", str(path))
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr, r.stderr
    assert str(path) in r.stderr


def test_config_file_and_flag_override(tmp_path):
    cfg = ("trust-domain: example.org\ncluster-id: c-file\nlog-format: text\n"
           "ca:\n  key-type: rsa-2048\n  agent-svid-ttl: 10m\n  server-cert-ttl: 1h\n")
    s = Server(tmp_path, config=cfg, extra_args=["--log-format", "json"])
    s.start()
    started = s.find_logs("Server started")[0]
    # --cluster-id from the harness wins over the file's
    assert started["clusterId"] == CLUSTER
    pem = s.bundle_pem
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    s.stop()


def test_help_and_version():
    r = run_server("--help")
    assert r.returncode == 0 and "--listen-address" in r.stdout
    r = run_server("--version")
    assert r.returncode == 0 and r.stdout.startswith("anchor-server ")


def test_text_log_format(tmp_path):
    s = Server(tmp_path, extra_args=["--log-format", "text"])
    s.start(wait=False)
    deadline = time.monotonic() + 30
    while "Server started" not in s.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert " INFO  Server started " in s.log_text()
    s.stop()


def _server_cert(s):
    conn = s.connect()
    try:
        return conn.conn.get_peer_certificate().to_cryptography()
    finally:
        conn.close()


def test_server_certificate_rotation(tmp_path):
    """A 60 s server certificate is replaced after two thirds of its life;
    both carry spiffe://<td>/server (AgentConn checks) and chain to the CA."""
    s = Server(tmp_path, extra_args=["--ca-server-cert-ttl", "60s"]).start()
    try:
        first = _server_cert(s)
        life = first.not_valid_after - first.not_valid_before
        assert life <= datetime.timedelta(seconds=60 + 61)
        s.wait_log("Server certificate rotated", timeout=60)
        second = _server_cert(s)
        assert second.serial_number != first.serial_number
        assert second.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            first.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    finally:
        s.stop()


def test_metrics_off_and_settings_from_file(tmp_path):
    cfg = ("metrics-address: \"off\"\nlogin-timeout: 1500ms\nlog-level: info\n"
           "ca:\n  agent-svid-ttl: 2h\n")
    s = Server(tmp_path, config=cfg)
    # the harness's own --metrics-address would override the file's
    i = s.args.index("--metrics-address")
    del s.args[i:i + 2]
    s.start()
    try:
        assert s.metrics_port == 0
        conn = s.connect()
        sid = conn.open(LOGIN)
        t0 = time.monotonic()
        assert conn.wait(lambda: conn.streams[sid].ended, timeout=10)
        assert 1.2 < time.monotonic() - t0 < 5
        assert conn.streams[sid].message == "login timed out"
        conn.close()
    finally:
        s.stop()
