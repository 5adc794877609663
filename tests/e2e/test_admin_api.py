"""End-to-end tests of the admin API and managed config: the real anchor-server
and the real anchorctl over the server's unix socket.

What is asserted (docs/admin.md, issue 4 "Managed config"):
  * config set / get / history round trip, byte for byte, with who and when;
  * an invalid document is refused with the loader's own message (the same
    message `anchorctl config validate` prints) and the previous version stays
    in force;
  * every applied version is logged `Metadata updated`, `Updating
    configuration snapshot`, `Updating configuration cache`, in that order;
  * a version in the store that this server cannot load (a newer server's)
    is logged and the previous one stays in force;
  * a second server sharing the store applies a change made through the
    first one, without a restart;
  * a cluster id other than the server's is refused;
  * access: root, and a caller whose gid is admin-group; anyone else is
    refused (by the socket's mode, or by the peer-credential check);
  * agents: list, show, ban, unban; the bundle.

ctest sets ANCHOR_BINARY_DIR; by hand the `make test` build is the default.
"""

import datetime
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.environ.get("ANCHOR_BINARY_DIR", os.path.join(_REPO, "build", "test"))
SERVER = os.path.join(BIN_DIR, "anchor-server")
CTL = os.path.join(BIN_DIR, "anchorctl")
CLUSTER = "c-8f2k1q"
TD = "example.org"
# A gid that no group of a test machine uses, and nobody's ids.
ADMIN_GID = 4242
NOBODY = 65534

RELOAD_LINES = ["Metadata updated", "Updating configuration snapshot", "Updating configuration cache"]


# --- a CA for the policies ----------------------------------------------------------


def make_ca(cn):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def policy_doc(ca_pem, name="x509pop_policy", extra=""):
    """An AgentAttestation v1 document with one x509pop policy."""
    ca = "".join("              %s\n" % l for l in ca_pem.strip().splitlines())
    return (
        "section: AgentAttestation\n"
        "schema: v1\n"
        "spec:\n"
        "  policies:\n"
        "    - name: %s\n"
        "      requiredAttestors:\n"
        "        - type: x509pop\n"
        "          config:\n"
        "%s"
        "            caCerts: |\n"
        "%s" % (name, extra, ca)
    )


@pytest.fixture(scope="module")
def ca_pem():
    return make_ca("admin test CA")


# --- running programs ---------------------------------------------------------------------


def ctl(*args, sock=None, env=None, user=None, input=None):
    """Runs anchorctl; user is None (root) or a setpriv prefix list."""
    assert os.access(CTL, os.X_OK), "no anchorctl at %s (set ANCHOR_BINARY_DIR)" % CTL
    cmd = [CTL, *args]
    if sock is not None:
        cmd += ["--admin-socket", sock]
    if user is not None:
        cmd = user + cmd
    e = dict(os.environ)
    e.pop("ANCHOR_ADMIN_SOCKET", None)
    if env:
        e.update(env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=e, input=input)


class Server:
    """One anchor-server in its own directory, JSON logs in a file."""

    def __init__(self, root, name="s1", datastore=None, admin_group=None, extra=()):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        # anchorctl run as nobody must reach the socket through the path.
        for d in (root, self.dir):
            os.chmod(d, 0o755)
        self.sock = os.path.join(self.dir, "admin.sock")
        self.db = datastore or os.path.join(self.dir, "data", "anchor.db")
        self.log_path = os.path.join(self.dir, "server.log")
        args = [
            SERVER,
            "--trust-domain", TD,
            "--cluster-id", CLUSTER,
            "--listen-address", "127.0.0.1:0",
            "--metrics-address", "127.0.0.1:0",
            "--admin-socket", self.sock,
            "--data-dir", os.path.join(self.dir, "data"),
            "--datastore", "sqlite://" + self.db,
            "--log-format", "json",
            "--config-poll-interval", "200ms",
            *extra,
        ]
        if admin_group is not None:
            args += ["--admin-group", str(admin_group)]
        assert os.access(SERVER, os.X_OK), "no anchor-server at %s" % SERVER
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("anchor-server exited: %s" % self.text())
            if any(l.get("msg") == "Server started" for l in self.lines()):
                return
            time.sleep(0.05)
        raise AssertionError("anchor-server did not start: %s" % self.text())

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def lines(self):
        out = []
        for l in self.text().splitlines():
            try:
                out.append(json.loads(l))
            except ValueError:
                pass
        return out

    def msgs(self):
        return [l.get("msg") for l in self.lines()]

    def wait_for(self, pred, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred(self.lines()):
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        return self.proc.returncode


@pytest.fixture
def servers():
    # Not pytest's tmp_path: anchorctl run as nobody must be able to walk to
    # the socket, and a unix socket path must stay under 108 bytes.
    root = tempfile.mkdtemp(prefix="anchor-admin-")
    started = []

    def start(**kw):
        s = Server(root, name="s%d" % (len(started) + 1), **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        rc = s.stop()
        # A clean stop, and nothing the sanitizers complained about.
        assert rc == 0, s.text()[-4000:]
        assert "Sanitizer" not in s.text()
        assert "runtime error:" not in s.text()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def server(servers):
    return servers()


def write(tmp_path, name, text):
    p = os.path.join(str(tmp_path), name)
    with open(p, "w") as f:
        f.write(text)
    return p


def get_doc(srv, *extra):
    """config get's output split into its comment line and the text."""
    r = ctl("config", "get", "cluster", "--id", CLUSTER, *extra, sock=srv.sock)
    assert r.returncode == 0, r.stderr
    head, _, text = r.stdout.partition("\n")
    return head, text


def history(srv):
    r = ctl("config", "history", "--id", CLUSTER, sock=srv.sock)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["VERSION", "SECTION", "SET", "AT", "SET", "BY", "BYTES"]
    return [l.split() for l in lines[1:]]


def reload_triples(srv):
    """[(version, [msgs...])] of the reload lines, in log order."""
    return [(l.get("version"), l["msg"]) for l in srv.lines() if l.get("msg") in RELOAD_LINES]


def assert_reloaded(srv, version):
    """The three documented lines for `version`, consecutive and in order."""
    assert srv.wait_for(
        lambda ls: any(l.get("msg") == RELOAD_LINES[2] and l.get("version") == version for l in ls)
    ), srv.text()
    got = [m for v, m in reload_triples(srv) if v == version]
    assert got == RELOAD_LINES, got


# --- managed config ---------------------------------------------------------------


def test_set_get_history_round_trip(server, tmp_path, ca_pem):
    doc1 = policy_doc(ca_pem)
    doc2 = policy_doc(ca_pem, name="second_policy", extra="            maxIntermediates: 2\n")
    p1, p2 = write(tmp_path, "p1.yaml", doc1), write(tmp_path, "p2.yaml", doc2)

    r = ctl("config", "set", "cluster", "--id", CLUSTER, p1, sock=server.sock)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("cluster %s: AgentAttestation version 1 stored" % CLUSTER)
    assert r.stderr == ""
    r = ctl("config", "set", "cluster", "--id", CLUSTER, p2, sock=server.sock)
    assert r.returncode == 0, r.stderr
    assert "AgentAttestation version 2 stored" in r.stdout

    head, text = get_doc(server)
    assert text == doc2  # byte for byte
    assert head.startswith("# cluster %s, section AgentAttestation, version 2, set by uid=0 at " % CLUSTER)
    assert head.endswith("(in force)")
    head, text = get_doc(server, "--version", "1")
    assert text == doc1
    assert "version 1" in head and "not in force: the server runs version 2" in head
    _, text = get_doc(server, "--section", "AgentAttestation", "--version", "2")
    assert text == doc2

    rows = history(server)
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
        ("2", "AgentAttestation", "uid=0", str(len(doc2))),
        ("1", "AgentAttestation", "uid=0", str(len(doc1))),
    ]
    # set_at is now, in RFC 3339 UTC.
    at = datetime.datetime.strptime(rows[0][2], "%Y-%m-%dT%H:%M:%SZ")
    assert abs((datetime.datetime.utcnow() - at).total_seconds()) < 120

    # Stdin works as FILE, and the scope word may be left out of history.
    r = ctl("config", "set", "cluster", "--id", CLUSTER, "-", sock=server.sock, input=doc1)
    assert r.returncode == 0 and "version 3 stored" in r.stdout, r.stderr
    r = ctl("config", "history", "cluster", "--id", CLUSTER, "--limit", "1", sock=server.sock)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2


def test_get_errors(server, tmp_path, ca_pem):
    r = ctl("config", "get", "cluster", "--id", CLUSTER, sock=server.sock)
    assert r.returncode == 1
    assert r.stderr == 'anchorctl: cluster "%s" has no configuration documents\n' % CLUSTER
    assert r.stdout == ""
    ctl("config", "set", "cluster", "--id", CLUSTER, write(tmp_path, "p.yaml", policy_doc(ca_pem)),
        sock=server.sock)
    r = ctl("config", "get", "cluster", "--id", CLUSTER, "--version", "9", sock=server.sock)
    assert r.returncode == 1
    assert r.stderr == (
        'anchorctl: cluster "%s" has no version 9 of section "AgentAttestation"\n' % CLUSTER
    )
    r = ctl("config", "get", "cluster", "--id", CLUSTER, "--section", "SVIDIssuancePolicy",
            sock=server.sock)
    assert r.returncode == 1
    assert 'has no document of section "SVIDIssuancePolicy"' in r.stderr
    # Usage errors are the command line's, status 2, before any call.
    for args, msg in [
        (("--version", "0"), '--version must be a number of at least 1 (got "0")'),
        (("--version", "1x"), '--version must be a number of at least 1 (got "1x")'),
        (("--sektion", "x"), 'unknown flag "--sektion"'),
    ]:
        r = ctl("config", "get", "cluster", "--id", CLUSTER, *args, sock=server.sock)
        assert r.returncode == 2, r
        assert r.stderr.startswith("anchorctl: %s\n" % msg), r.stderr
    r = ctl("config", "get", "cluster", sock=server.sock)
    assert r.returncode == 2 and "--id CLUSTER-ID is required" in r.stderr
    r = ctl("config", "set", "node", "--id", CLUSTER, "f.yaml", sock=server.sock)
    assert r.returncode == 2 and 'unknown scope "node" (only cluster)' in r.stderr


def test_reload_logs_three_lines_in_order(server, tmp_path, ca_pem):
    for i in range(1, 4):
        p = write(tmp_path, "p%d.yaml" % i, policy_doc(ca_pem, name="policy_%d" % i))
        r = ctl("config", "set", "cluster", "--id", CLUSTER, p, sock=server.sock)
        assert r.returncode == 0, r.stderr
        # SetConfig answers once this server applied the version.
        assert_reloaded(server, i)
    # Three versions, three triples, nothing else in between.
    assert [m for _, m in reload_triples(server)] == RELOAD_LINES * 3
    stored = [l for l in server.lines() if l.get("msg") == "Configuration document stored"]
    assert [l["version"] for l in stored] == [1, 2, 3]
    assert all(l["setBy"] == "uid=0" for l in stored)
    meta = [l for l in server.lines() if l.get("msg") == "Metadata updated"]
    assert [(l["clusterId"], l["section"]) for l in meta] == [(CLUSTER, "AgentAttestation")] * 3


# Invalid documents: the message is the loader's, the one `config validate`
# prints after the file name (docs/configuration.md lists them).
INVALID = [
    ("no_ca", lambda ca: policy_doc(ca).split("            caCerts")[0],
     'policy "x509pop_policy": caCerts is required'),
    ("bad_pem", lambda ca: policy_doc("this is not PEM"),
     'policy "x509pop_policy": could not parse any PEM certificates'),
    ("bad_der", lambda ca: policy_doc("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"),
     "PEM block 1: not a valid DER certificate"),
    ("typo", lambda ca: policy_doc(ca, extra="            maxIntermediate: 2\n"),
     'unknown key "maxIntermediate"'),
    ("schema", lambda ca: policy_doc(ca).replace("schema: v1", "schema: v2"),
     'schema: expected "v1"'),
    ("section", lambda ca: policy_doc(ca).replace("section: AgentAttestation", "section: Other"),
     'section: expected "AgentAttestation"'),
    ("not_yaml", lambda ca: "section: [AgentAttestation\n", "invalid YAML"),
    ("empty", lambda ca: "", "the document is empty"),
]


@pytest.mark.parametrize("name,make,phrase", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_document_refused_previous_stays(server, tmp_path, ca_pem, name, make, phrase):
    good = policy_doc(ca_pem)
    r = ctl("config", "set", "cluster", "--id", CLUSTER, write(tmp_path, "good.yaml", good),
            sock=server.sock)
    assert r.returncode == 0, r.stderr
    assert_reloaded(server, 1)

    bad = write(tmp_path, "bad.yaml", make(ca_pem))
    v = ctl("config", "validate", bad)
    assert v.returncode == 1 and phrase in v.stderr, v.stderr
    r = ctl("config", "set", "cluster", "--id", CLUSTER, bad, sock=server.sock)
    assert r.returncode == 1
    assert r.stdout == ""
    assert phrase in r.stderr
    # Same loader, same message: validate's is "<file>: <message>".
    assert v.stderr == r.stderr.replace("anchorctl: ", "anchorctl: %s: " % bad, 1)
    refused = [l for l in server.lines() if l.get("msg") == "Configuration document refused"]
    assert len(refused) == 1 and phrase in refused[0]["error"]

    # Nothing stored, nothing reloaded, version 1 still in force.
    assert [r[0] for r in history(server)] == ["1"]
    head, text = get_doc(server)
    assert text == good and head.endswith("(in force)")
    time.sleep(0.5)  # two polls of the watcher
    assert [m for _, m in reload_triples(server)] == RELOAD_LINES


def test_unloadable_version_in_store_keeps_previous(server, tmp_path, ca_pem):
    """A version this server cannot load (as a newer server's schema would be)
    is logged once and the previous snapshot stays in force."""
    good = policy_doc(ca_pem)
    assert ctl("config", "set", "cluster", "--id", CLUSTER, write(tmp_path, "g.yaml", good),
               sock=server.sock).returncode == 0
    assert_reloaded(server, 1)
    db = sqlite3.connect(server.db, timeout=10)
    db.execute(
        "INSERT INTO config_docs (cluster_id, section, version, body, set_by, set_at) "
        "VALUES (?, 'AgentAttestation', 2, ?, 'uid=0', ?)",
        (CLUSTER, good.replace("schema: v1", "schema: v2"), int(time.time())),
    )
    db.commit()
    db.close()
    assert server.wait_for(lambda ls: any(
        l.get("msg") == "Configuration document refused, previous configuration stays in force"
        for l in ls)), server.text()
    refused = [l for l in server.lines()
               if l.get("msg") == "Configuration document refused, previous configuration stays in force"]
    assert refused[0]["version"] == 2 and refused[0]["activeVersion"] == 1
    assert 'schema: expected "v1"' in refused[0]["error"]
    assert [(v, m) for v, m in reload_triples(server) if v == 2] == [(2, "Metadata updated")]
    head, _ = get_doc(server)
    assert "version 2" in head and "not in force: the server runs version 1" in head
    time.sleep(0.6)  # not retried on later polls
    assert len([l for l in server.lines() if l.get("msg", "").startswith("Configuration document refused,")]) == 1

    # The next good version is applied.
    r = ctl("config", "set", "cluster", "--id", CLUSTER, write(tmp_path, "g2.yaml", good),
            sock=server.sock)
    assert r.returncode == 0 and "version 3 stored" in r.stdout
    assert_reloaded(server, 3)


def test_second_server_sharing_the_store_reloads(servers, tmp_path, ca_pem):
    a = servers()
    b = servers(datastore=a.db)
    r = ctl("config", "set", "cluster", "--id", CLUSTER, write(tmp_path, "p.yaml", policy_doc(ca_pem)),
            sock=a.sock)
    assert r.returncode == 0, r.stderr
    assert_reloaded(a, 1)
    assert_reloaded(b, 1)  # by polling the store's revision, no restart
    head, _ = get_doc(b)
    assert head.endswith("(in force)")


def test_restart_loads_the_latest_version(servers, tmp_path, ca_pem):
    a = servers()
    assert ctl("config", "set", "cluster", "--id", CLUSTER,
               write(tmp_path, "p.yaml", policy_doc(ca_pem)), sock=a.sock).returncode == 0
    assert a.stop() == 0
    b = servers(datastore=a.db)
    head, _ = get_doc(b)
    assert "version 1" in head and head.endswith("(in force)")
    # Already applied at start: the watcher does not apply it again.
    time.sleep(0.5)
    assert [m for _, m in reload_triples(b)] == []


def test_cluster_id_mismatch_refused(server, tmp_path, ca_pem):
    p = write(tmp_path, "p.yaml", policy_doc(ca_pem))
    want = 'anchorctl: cluster id "c-other" does not match this server\'s cluster "%s"\n' % CLUSTER
    for args in (["set", "cluster", "--id", "c-other", p], ["get", "cluster", "--id", "c-other"],
                 ["history", "--id", "c-other"]):
        r = ctl("config", *args, sock=server.sock)
        assert r.returncode == 1, r
        assert r.stderr == want
        assert r.stdout == ""
    assert history(server) == []


# --- access ------------------------------------------------------------------------


def as_user(uid, gid, groups=None):
    g = ["--clear-groups"] if groups is None else ["--groups", ",".join(map(str, groups))]
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, *g]


def test_access_root_and_admin_group_only(servers, ca_pem):
    srv = servers(admin_group=ADMIN_GID)
    st = os.stat(srv.sock)
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == ADMIN_GID
    # gid is the admin group: served, and recorded as its uid. (The
    # document goes through stdin: nobody cannot read pytest's tmp_path.)
    r = ctl("config", "set", "cluster", "--id", CLUSTER, "-", sock=srv.sock,
            user=as_user(NOBODY, ADMIN_GID), input=policy_doc(ca_pem))
    assert r.returncode == 0, r.stderr
    assert history(srv)[0][3] == "uid=%d" % NOBODY

    # In the group only as a supplementary group: the file system lets it
    # connect, SO_PEERCRED shows gid 65534, the server refuses.
    r = ctl("config", "history", "--id", CLUSTER, sock=srv.sock,
            user=as_user(NOBODY, NOBODY, groups=[ADMIN_GID]))
    assert r.returncode == 1
    assert r.stderr == (
        'anchorctl: permission denied: uid %d gid %d is not root and not in the admin group "%d"\n'
        % (NOBODY, NOBODY, ADMIN_GID)
    )
    refused = [l for l in srv.lines() if l.get("msg") == "Admin request refused"]
    assert refused and refused[-1]["uid"] == NOBODY and refused[-1]["method"] == "ConfigHistory"

    # Not in the group at all: the socket's mode refuses the connection.
    for args in (["config", "history", "--id", CLUSTER], ["agent", "list"], ["bundle", "show"]):
        r = ctl(*args, sock=srv.sock, user=as_user(NOBODY, NOBODY))
        assert r.returncode == 1
        assert r.stderr.startswith("anchorctl: cannot reach the admin socket %s: Permission denied"
                                   % srv.sock), r.stderr
    # A refused caller changed nothing.
    assert len(history(srv)) == 1


def test_access_without_admin_group_is_root_only(server):
    st = os.stat(server.sock)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    r = ctl("agent", "list", sock=server.sock, user=as_user(NOBODY, NOBODY))
    assert r.returncode == 1 and "Permission denied" in r.stderr


def test_unreachable_socket_and_env(server, tmp_path):
    missing = os.path.join(str(tmp_path), "nope.sock")
    r = ctl("config", "history", "--id", CLUSTER, sock=missing)
    assert r.returncode == 1
    assert r.stderr.startswith(
        "anchorctl: cannot reach the admin socket %s: No such file or directory (is anchor-server "
        "running?" % missing)
    r = ctl("agent", "list", env={"ANCHOR_ADMIN_SOCKET": missing})
    assert r.returncode == 1 and missing in r.stderr
    r = ctl("agent", "list", env={"ANCHOR_ADMIN_SOCKET": server.sock})
    assert r.returncode == 0, r.stderr
    # The flag wins over the environment.
    r = ctl("agent", "list", sock=server.sock, env={"ANCHOR_ADMIN_SOCKET": missing})
    assert r.returncode == 0, r.stderr


# --- agents and bundle ------------------------------------------------------------------


def seed_agent(db_path, spiffe_id, attrs, banned=0, serial="0a1b", expires=2000000000):
    db = sqlite3.connect(db_path, timeout=10)
    now = int(time.time())
    db.execute("INSERT INTO agents (spiffe_id, svid_serial, svid_expires_at, first_seen, last_seen, "
               "banned) VALUES (?, ?, ?, ?, ?, ?)", (spiffe_id, serial, expires, now, now, banned))
    db.execute("INSERT INTO agent_attestors VALUES (?, 0, 'x509pop')", (spiffe_id,))
    for i, (k, v) in enumerate(attrs):
        db.execute("INSERT INTO agent_attributes VALUES (?, ?, ?, ?)", (spiffe_id, i, k, v))
    db.commit()
    db.close()


def test_agents_list_show_ban_unban(server):
    a1 = "spiffe://%s/agents/x509pop/aaaa" % TD
    a2 = "spiffe://%s/agents/x509pop/bbbb" % TD
    seed_agent(server.db, a1, [("x509_pop.subject.common_name", 'node "1"\\x'),
                               ("x509_pop.serial_number", "3a7f2c1b")])
    seed_agent(server.db, a2, [("x509_pop.subject.common_name", "evil\x1b[31m\nline")])

    r = ctl("agent", "list", sock=server.sock)
    assert r.returncode == 0, r.stderr
    rows = [l.split() for l in r.stdout.splitlines()[1:]]
    assert [(x[0], x[1], x[-1]) for x in rows] == [(a1, "x509pop", "no"), (a2, "x509pop", "no")]

    r = ctl("agent", "show", a1, sock=server.sock)
    assert r.returncode == 0, r.stderr
    assert "SPIFFE ID:     %s\n" % a1 in r.stdout
    assert "Banned:        no\n" in r.stdout
    assert "SVID serial:   0a1b\n" in r.stdout
    assert "SVID expires:  2033-05-18T03:33:20Z\n" in r.stdout
    assert '  x509pop:x509_pop.subject.common_name="node \\"1\\"\\\\x"\n' in r.stdout
    assert '  x509pop:x509_pop.serial_number="3a7f2c1b"\n' in r.stdout
    # A hostile attribute value can neither add a line nor reach the terminal.
    r = ctl("agent", "show", a2, sock=server.sock)
    assert '="evil\\x1b[31m\\x0aline"' in r.stdout and "\x1b" not in r.stdout

    r = ctl("agent", "ban", a1, sock=server.sock)
    assert r.returncode == 0 and r.stdout == "agent %s banned\n" % a1
    assert "Banned:        yes\n" in ctl("agent", "show", a1, sock=server.sock).stdout
    rows = [l.split() for l in ctl("agent", "list", sock=server.sock).stdout.splitlines()[1:]]
    assert [x[-1] for x in rows] == ["yes", "no"]
    banned = [l for l in server.lines() if l.get("msg") == "Agent banned"]
    assert banned[0]["spiffeId"] == a1 and banned[0]["by"] == "uid=0"
    db = sqlite3.connect(server.db)
    assert db.execute("SELECT banned FROM agents WHERE spiffe_id = ?", (a1,)).fetchone() == (1,)
    db.close()

    # The path alone names an agent of the server's trust domain.
    r = ctl("agent", "unban", "/agents/x509pop/aaaa", sock=server.sock)
    assert r.returncode == 0 and r.stdout == "agent %s unbanned\n" % a1
    assert "Banned:        no\n" in ctl("agent", "show", a1, sock=server.sock).stdout

    for cmd in ("show", "ban", "unban"):
        r = ctl("agent", cmd, "spiffe://%s/nope" % TD, sock=server.sock)
        assert r.returncode == 1
        assert r.stderr == "anchorctl: agent spiffe://%s/nope not found\n" % TD
    r = ctl("agent", "ban", sock=server.sock)
    assert r.returncode == 2 and "agent ban: missing SPIFFE-ID" in r.stderr


def test_agent_list_pages(server):
    ids = ["spiffe://%s/agents/n%04d" % (TD, i) for i in range(1203)]
    db = sqlite3.connect(server.db, timeout=10)
    now = int(time.time())
    db.executemany("INSERT INTO agents (spiffe_id, first_seen, last_seen) VALUES (?, ?, ?)",
                   [(i, now, now) for i in ids])
    db.commit()
    db.close()
    r = ctl("agent", "list", sock=server.sock)
    assert r.returncode == 0, r.stderr
    assert [l.split()[0] for l in r.stdout.splitlines()[1:]] == ids


def test_bundle_show(server):
    r = ctl("bundle", "show", sock=server.sock)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("-----BEGIN CERTIFICATE-----") == 1
    root = x509.load_pem_x509_certificate(r.stdout.encode())
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with open(os.path.join(server.dir, "data", "ca-cert.pem"), "rb") as f:
        assert x509.load_pem_x509_certificate(f.read()) == root
    r = ctl("bundle", "show", "--format", "jwks", sock=server.sock)
    assert r.returncode == 0, r.stderr
    jwks = json.loads(r.stdout)
    assert [k["use"] for k in jwks["keys"]] == ["x509-svid"]
    r = ctl("bundle", "show", "--format", "der", sock=server.sock)
    assert r.returncode == 2 and '--format must be pem or jwks (got "der")' in r.stderr


# --- the API itself, with a second gRPC stack -------------------------------------------------


def test_malformed_request_and_unknown_method(server):
    grpc = pytest.importorskip("grpc")
    with grpc.insecure_channel("unix:" + server.sock) as ch:
        call = ch.unary_unary("/anchor.admin.v1.AdminAPI/GetConfig")
        with pytest.raises(grpc.RpcError) as e:
            call(b"\x0a\xff\xff\xff", timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details() == "malformed request"
        # An empty GetConfig request has no cluster id.
        with pytest.raises(grpc.RpcError) as e:
            call(b"", timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details() == "a cluster id is required"
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/anchor.admin.v1.AdminAPI/DeleteEverything")(b"", timeout=10)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def pb_string(field, s):
    """One protobuf string field (wire type 2) with a length under 16384."""
    b = s.encode()
    n = len(b)
    varint = bytes([n]) if n < 0x80 else bytes([(n & 0x7F) | 0x80, n >> 7])
    return bytes([(field << 3) | 2]) + varint + b


def test_set_config_section_checked(server, ca_pem):
    grpc = pytest.importorskip("grpc")
    doc = policy_doc(ca_pem)
    with grpc.insecure_channel("unix:" + server.sock) as ch:
        call = ch.unary_unary("/anchor.admin.v1.AdminAPI/SetConfig")
        with pytest.raises(grpc.RpcError) as e:
            call(pb_string(1, CLUSTER) + pb_string(2, "SVIDIssuancePolicy") + pb_string(3, doc),
                 timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details() == 'unknown section "SVIDIssuancePolicy" (supported: AgentAttestation)'
        # The section named in the request may be the document's own.
        call(pb_string(1, CLUSTER) + pb_string(2, "AgentAttestation") + pb_string(3, doc), timeout=10)
    assert [r[0] for r in history(server)] == ["1"]


def test_several_sections(server, tmp_path, ca_pem):
    """Sections this server does not load (stored by another tool or a newer
    server) are listed and read back, and never reach the watcher."""
    assert ctl("config", "set", "cluster", "--id", CLUSTER,
               write(tmp_path, "p.yaml", policy_doc(ca_pem)), sock=server.sock).returncode == 0
    other = "section: SVIDIssuancePolicy\nschema: v1\nspec: {}\n"
    db = sqlite3.connect(server.db, timeout=10)
    db.execute("INSERT INTO config_docs (cluster_id, section, version, body, set_by, set_at) "
               "VALUES (?, 'SVIDIssuancePolicy', 1, ?, 'uid=7', 0)", (CLUSTER, other))
    db.commit()
    db.close()
    r = ctl("config", "get", "cluster", "--id", CLUSTER, sock=server.sock)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.split("\n---\n")  # a line of its own, as in YAML
    assert first.startswith("# cluster %s, section AgentAttestation, version 1," % CLUSTER)
    assert first.endswith("-----END CERTIFICATE-----")
    assert second == "# cluster %s, section SVIDIssuancePolicy, version 1, set by uid=7 at -\n%s" % (
        CLUSTER, other)
    r = ctl("config", "get", "cluster", "--id", CLUSTER, "--version", "1", sock=server.sock)
    assert r.returncode == 1
    assert r.stderr == 'anchorctl: a version needs a section: cluster "%s" has 2 sections\n' % CLUSTER
    _, text = get_doc(server, "--section", "SVIDIssuancePolicy", "--version", "1")
    assert text == other
    rows = history(server)
    assert [(x[0], x[1]) for x in rows] == [("1", "SVIDIssuancePolicy"), ("1", "AgentAttestation")]
    time.sleep(0.5)
    assert [v for v, _ in reload_triples(server)] == [1, 1, 1]
    r = ctl("config", "history", "--id", CLUSTER, "--section", "AgentAttestation", sock=server.sock)
    assert len(r.stdout.splitlines()) == 2


def test_documents_anchorctl_refuses_to_send(server, tmp_path):
    nul = os.path.join(str(tmp_path), "nul.yaml")
    with open(nul, "wb") as f:
        f.write(b"section: AgentAttestation\x00\n")
    r = ctl("config", "set", "cluster", "--id", CLUSTER, nul, sock=server.sock)
    assert r.returncode == 1 and r.stderr == "anchorctl: %s: the document contains a NUL byte\n" % nul
    big = write(tmp_path, "big.yaml", "#" * (1024 * 1024 + 1))
    r = ctl("config", "set", "cluster", "--id", CLUSTER, big, sock=server.sock)
    assert r.returncode == 1
    assert r.stderr == "anchorctl: %s: document too large (more than 1048576 bytes)\n" % big
    r = ctl("config", "set", "cluster", "--id", CLUSTER, os.path.join(str(tmp_path), "none.yaml"),
            sock=server.sock)
    assert r.returncode == 1 and "No such file or directory" in r.stderr
    assert history(server) == []


def test_admin_socket_in_use_refused(server):
    """A second server on the same admin socket refuses to start instead of
    taking the first one's socket over."""
    r = subprocess.run(
        [SERVER, "--trust-domain", TD, "--cluster-id", CLUSTER, "--listen-address", "127.0.0.1:0",
         "--metrics-address", "127.0.0.1:0", "--admin-socket", server.sock,
         "--data-dir", os.path.join(server.dir, "data2"), "--log-format", "json"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "admin socket %s is in use by another process" % server.sock in r.stdout + r.stderr
    # The first server still answers on it.
    assert ctl("agent", "list", sock=server.sock).returncode == 0


USAGE = [
    (("agent",), "agent: missing command (list, show, ban, unban)"),
    (("agent", "delete", "x"), 'agent: unknown command "delete"'),
    (("agent", "list", "extra"), 'unexpected argument "extra"'),
    (("agent", "show"), "agent show: missing SPIFFE-ID"),
    (("agent", "show", "a", "b"), 'unexpected argument "b"'),
    (("agent", "unban", "--admin-socket"), "--admin-socket needs a value (PATH)"),
    (("bundle",), "bundle: missing command (show)"),
    (("bundle", "get"), 'bundle: unknown command "get"'),
    (("bundle", "show", "x"), 'unexpected argument "x"'),
    (("config", "set", "cluster", "--id", CLUSTER), "config set: missing FILE"),
    (("config", "set", "cluster", "f.yaml"), "config set: --id CLUSTER-ID is required"),
    (("config", "set", "cluster", "--id", CLUSTER, "a", "b"), 'unexpected argument "b"'),
    (("config", "history"), "config history: --id CLUSTER-ID is required"),
    (("config", "history", "--id", CLUSTER, "--limit", "0"),
     '--limit must be a number from 1 to 10000 (got "0")'),
    (("config", "history", "--id", CLUSTER, "--id", "x"), "--id given more than once"),
]


@pytest.mark.parametrize("args,msg", USAGE, ids=["-".join(a[:2]) + str(i) for i, (a, _) in enumerate(USAGE)])
def test_usage_errors(args, msg):
    # No server is needed: the command line is checked before any call.
    r = ctl(*args, env={"ANCHOR_ADMIN_SOCKET": "/nonexistent/admin.sock"})
    assert r.returncode == 2, r
    assert r.stdout == ""
    assert r.stderr.startswith("anchorctl: %s\n" % msg), r.stderr
    assert "usage: anchorctl" in r.stderr


def test_help():
    for group in ("config", "agent", "bundle"):
        r = ctl("help", group)
        assert r.returncode == 0 and r.stderr == ""
        assert "usage: anchorctl %s" % group in r.stdout
        assert "--admin-socket" in r.stdout
    r = ctl("config", "set", "--help")
    assert r.returncode == 0 and "config set" in r.stdout
    r = ctl("--help")
    assert "agent list|show|ban|unban" in r.stdout and "bundle show" in r.stdout
