"""Managed config changed while agents log in (issue 4): 200 logins of the real
anchor-agent (--once) against the real anchor-server, across 20 reloads of
the AgentAttestation policy made with anchorctl. Every policy applied
authorizes the agents, so no login may fail: a login in flight finishes on
the snapshot it started with, and a new one starts on whatever is in force.

The server's helpers (Server, ctl, policy_doc) are test_admin_api.py's.
"""

import datetime
import importlib.util
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_spec = importlib.util.spec_from_file_location(
    "admin_api_helpers", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_admin_api.py")
)
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)

AGENT = os.path.join(api.BIN_DIR, "anchor-agent")
LOGINS = 200
RELOADS = 20
PARALLEL = 4


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(directory):
    """A root CA, and an agent certificate (EC, digitalSignature) with its key."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("reload test CA"))
        .issuer_name(name("reload test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("node-reload"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"cert": os.path.join(directory, "agent.crt"), "key": os.path.join(directory, "agent.key")}
    with open(paths["cert"], "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(paths["key"], "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return ca.public_bytes(serialization.Encoding.PEM).decode(), paths


def agent_config(directory, srv, pki_paths, bundle_path):
    port = [l for l in srv.lines() if l.get("msg") == "Server started"][0]["port"]
    p = os.path.join(directory, "agent.yaml")
    with open(p, "w") as f:
        f.write(
            "cluster-id: %s\n"
            "trust-domain: %s\n"
            "server-address: 127.0.0.1:%d\n"
            "trust-bundle-path: %s\n"
            "log-format: json\n"
            "disable-kubernetes-attestation: true\n"
            "agent-attestors:\n"
            "  - type: x509pop\n"
            "    config:\n"
            '      certificatePath: "%s"\n'
            '      privateKeyPath: "%s"\n'
            % (api.CLUSTER, api.TD, port, bundle_path, pki_paths["cert"], pki_paths["key"])
        )
    return p


def login(config, data_dir):
    return subprocess.run(
        [AGENT, "--config", config, "--once", "--data-dir", data_dir],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_logins_across_reloads(servers, tmp_path):
    if not os.access(AGENT, os.X_OK):
        pytest.skip("no anchor-agent at %s" % AGENT)
    srv = servers()
    d = str(tmp_path)
    ca_pem, pki_paths = make_pki(d)
    # Two documents that both authorize the agent, different enough that each
    # reload really replaces the snapshot (names, limits, policy order).
    docs = [
        api.policy_doc(ca_pem, name="policy_a"),
        api.policy_doc(ca_pem, name="policy_b", extra="            maxIntermediates: 2\n"),
    ]
    paths = [api.write(tmp_path, "p%d.yaml" % i, t) for i, t in enumerate(docs)]
    r = api.ctl("config", "set", "cluster", "--id", api.CLUSTER, paths[0], sock=srv.sock)
    assert r.returncode == 0, r.stderr
    api.assert_reloaded(srv, 1)
    r = api.ctl("bundle", "show", sock=srv.sock)
    assert r.returncode == 0, r.stderr
    bundle = api.write(tmp_path, "bundle.pem", r.stdout)
    config = agent_config(d, srv, pki_paths, bundle)

    # One login first, so a broken setup fails here with its message.
    first = login(config, os.path.join(d, "agent-first"))
    assert first.returncode == 0, first.stdout + first.stderr + srv.text()[-3000:]
    spiffe_id = first.stdout.strip().splitlines()[-1]
    assert spiffe_id.startswith("spiffe://%s/" % api.TD)

    done = [0]
    lock = threading.Lock()
    reload_errors = []

    def reloader():
        # Reload i once i * LOGINS / RELOADS logins have finished, so that the
        # reloads are spread over the whole run, with logins in flight.
        for i in range(RELOADS):
            while True:
                with lock:
                    if done[0] >= i * LOGINS // RELOADS:
                        break
                time.sleep(0.005)
            r = api.ctl("config", "set", "cluster", "--id", api.CLUSTER, paths[(i + 1) % 2],
                        sock=srv.sock)
            if r.returncode != 0:
                reload_errors.append(r.stderr)

    def one(i):
        r = login(config, os.path.join(d, "agent-%03d" % i))
        with lock:
            done[0] += 1
        return r

    t = threading.Thread(target=reloader)
    t.start()
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(one, range(LOGINS)))
    t.join(timeout=120)
    assert not t.is_alive()
    assert reload_errors == []

    failed = [(i, r.returncode, r.stdout + r.stderr[-2000:]) for i, r in enumerate(results)
              if r.returncode != 0]
    assert failed == [], failed[:3]
    assert all(r.stdout.strip().splitlines()[-1] == spiffe_id for r in results)

    # 21 versions applied (1 + 20 reloads), each logged with the three lines
    # in order, and every login verified by the server.
    api.assert_reloaded(srv, RELOADS + 1)
    for v in range(1, RELOADS + 2):
        assert [m for ver, m in api.reload_triples(srv) if ver == v] == api.RELOAD_LINES
    msgs = srv.msgs()
    assert msgs.count("Authorization received and verified") == LOGINS + 1
    assert "no cluster policy authorizes the provided attestors" not in srv.text()
    assert "attestation policy not found or no matching policy" not in srv.text()
    # The reloads really happened while logins were running.
    first_reload = msgs.index("Metadata updated", msgs.index("Metadata updated") + 1)
    last_reload = len(msgs) - 1 - msgs[::-1].index("Updating configuration cache")
    verified = [i for i, m in enumerate(msgs) if m == "Authorization received and verified"]
    assert verified[-1] > last_reload
    between = [i for i in verified if first_reload < i < last_reload]
    assert len(between) >= LOGINS // 2


def test_ban_and_unban_a_logged_in_agent(servers, tmp_path):
    """anchorctl agent ban/unban on an agent that really logged in: banned, its
    next login is refused; unbanned, it logs in again."""
    if not os.access(AGENT, os.X_OK):
        pytest.skip("no anchor-agent at %s" % AGENT)
    srv = servers()
    d = str(tmp_path)
    ca_pem, pki_paths = make_pki(d)
    p = api.write(tmp_path, "p.yaml", api.policy_doc(ca_pem))
    assert api.ctl("config", "set", "cluster", "--id", api.CLUSTER, p, sock=srv.sock).returncode == 0
    bundle = api.write(tmp_path, "bundle.pem", api.ctl("bundle", "show", sock=srv.sock).stdout)
    config = agent_config(d, srv, pki_paths, bundle)

    r = login(config, os.path.join(d, "a1"))
    assert r.returncode == 0, r.stdout + r.stderr + srv.text()[-3000:]
    spiffe_id = r.stdout.strip().splitlines()[-1]

    r = api.ctl("agent", "list", sock=srv.sock)
    rows = [l.split() for l in r.stdout.splitlines()[1:]]
    assert [(x[0], x[1], x[-1]) for x in rows] == [(spiffe_id, "x509pop", "no")]
    r = api.ctl("agent", "show", spiffe_id, sock=srv.sock)
    assert r.returncode == 0, r.stderr
    assert '  x509pop:x509_pop.subject.common_name="node-reload"\n' in r.stdout
    assert "SVID serial:   -\n" not in r.stdout  # the login recorded its SVID

    r = api.ctl("agent", "ban", spiffe_id, sock=srv.sock)
    assert r.returncode == 0 and r.stdout == "agent %s banned\n" % spiffe_id
    r = login(config, os.path.join(d, "a2"))
    assert r.returncode != 0
    assert "agent is banned" in r.stderr

    r = api.ctl("agent", "unban", spiffe_id, sock=srv.sock)
    assert r.returncode == 0 and r.stdout == "agent %s unbanned\n" % spiffe_id
    r = login(config, os.path.join(d, "a3"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == spiffe_id


servers = api.servers
