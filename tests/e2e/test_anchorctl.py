"""End-to-end tests of anchorctl: the real binary on real files.

Every PKI is made here with python3-cryptography, so each test says exactly
what its certificates are. The tests assert exit statuses (0 success, 1 check
failed, 2 usage error), the attribute lines on stdout, and the documented
messages on stderr (docs/troubleshooting.md). ctest sets ANCHOR_BINARY_DIR.
"""

import datetime
import hashlib
import os
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

# ctest sets ANCHOR_BINARY_DIR; by hand, the `make test` build is the default.
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(os.environ.get("ANCHOR_BINARY_DIR", os.path.join(_REPO, "build", "test")),
                   "anchorctl")
NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


def run(*args):
    assert os.access(BIN, os.X_OK), "no anchorctl at %s (set ANCHOR_BINARY_DIR)" % BIN
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)


# --- a small PKI ---------------------------------------------------------------


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
    def serial(self):
        h = "%x" % self.cert.serial_number
        return h if len(h) % 2 == 0 else "0" + h

    @property
    def sha1(self):
        return hashlib.sha1(self.der).hexdigest()


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def make_cert(
    cn,
    key,
    issuer=None,
    ca=False,
    serial=None,
    key_usage="sign",
    uris=(),
    not_before=None,
    not_after=None,
):
    """A certificate for key, signed by issuer (a Cert) or self-signed."""
    if cn:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    else:  # a subject without CN (an empty subject would need a critical SAN)
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "anchor tests")])
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before or NOW - DAY)
        .not_valid_after(not_after or NOW + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    # RFC 5280 4.2.1.1/4.2.1.2 (OpenSSL's strict mode asks for both).
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if issuer:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if ca:
        ku = dict(key_cert_sign=True, crl_sign=True, digital_signature=False)
    elif key_usage == "sign":
        ku = dict(key_cert_sign=False, crl_sign=False, digital_signature=True)
    elif key_usage == "encipher":
        ku = dict(key_cert_sign=False, crl_sign=False, digital_signature=False)
    else:
        ku = None
    if ku is not None:
        b = b.add_extension(
            x509.KeyUsage(
                content_commitment=False,
                key_encipherment=key_usage == "encipher",
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
                **ku,
            ),
            critical=True,
        )
    if uris:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]),
            critical=False,
        )
    signer = issuer.key if issuer else key
    algo = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return Cert(b.sign(signer, algo), key)


def key_pem(key, fmt="pkcs8"):
    if fmt == "pkcs8":
        f = serialization.PrivateFormat.PKCS8
    else:  # PKCS#1 for RSA, SEC1 for EC
        f = serialization.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(serialization.Encoding.PEM, f, serialization.NoEncryption()).decode()


def policy_yaml(*cas, max_intermediates=None, max_rsa=None, name="x509pop_policy"):
    pem = "".join(c.pem for c in cas)
    lines = [
        "section: AgentAttestation",
        "schema: v1",
        "spec:",
        "  policies:",
        "    - name: " + name,
        "      requiredAttestors:",
        "        - type: x509pop",
        "          config:",
    ]
    if max_intermediates is not None:
        lines.append("            maxIntermediates: %s" % max_intermediates)
    if max_rsa is not None:
        lines.append("            maxRSAKeySize: %s" % max_rsa)
    lines.append("            caCerts: |")
    lines += ["              " + l for l in pem.splitlines()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    root = make_cert("Test Root CA", ec_key(), ca=True, serial=0x01)
    inter = make_cert("Test Intermediate CA", ec_key(), issuer=root, ca=True, serial=0x1001)
    rogue = make_cert("Rogue CA", ec_key(), ca=True, serial=0x02)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certs = {
        "root": root,
        "int": inter,
        "rogue": rogue,
        "ec": make_cert(
            "node-1.example.org",
            ec_key(),
            issuer=inter,
            serial=0x3A7F2C1B,
            uris=[
                "x509pop://example.org/environment/production",
                "x509pop://example.org/path/a/b/c",
                "x509pop://example.org/environment/staging",
                "x509pop://other.org/environment/test",
                "x509pop://example.org/empty/",
                "x509pop://example.org.evil/region/x",
                "spiffe://example.org/ignored",
            ],
        ),
        "rsa": make_cert("node-rsa", rsa_key, issuer=inter, serial=0x0ABC),
        "direct": make_cert("node-direct", ec_key(), issuer=root, serial=0x42),
        "nocn": make_cert(None, ec_key(), issuer=inter, serial=0x43),
        "nods": make_cert("node-nods", ec_key(), issuer=inter, key_usage="encipher"),
        "noku": make_cert("node-noku", ec_key(), issuer=inter, key_usage=None),
        "stray": make_cert("node-stray", ec_key(), issuer=rogue),
        "ed25519": make_cert("node-ed", ed25519.Ed25519PrivateKey.generate(), issuer=inter),
        "leafca": make_cert("node-ca", ec_key(), issuer=inter, ca=True),
        "old": make_cert(
            "node-old",
            ec_key(),
            issuer=inter,
            not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
            not_after=datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc),
        ),
    }
    paths = {}
    for name, c in certs.items():
        p = d / (name + ".pem")
        p.write_text(c.pem)
        paths[name] = str(p)
        k = d / (name + ".key")
        k.write_text(key_pem(c.key))
        paths[name + ".key"] = str(k)
    (d / "rsa-pkcs1.key").write_text(key_pem(rsa_key, "traditional"))
    paths["rsa-pkcs1.key"] = str(d / "rsa-pkcs1.key")
    (d / "ec-sec1.key").write_text(key_pem(certs["ec"].key, "traditional"))
    paths["ec-sec1.key"] = str(d / "ec-sec1.key")
    (d / "ec-chain.pem").write_text(certs["ec"].pem + inter.pem)
    paths["ec-chain"] = str(d / "ec-chain.pem")
    for name, text in {
        "policy": policy_yaml(root),
        "policy-int": policy_yaml(inter),
        "policy-max0": policy_yaml(root, max_intermediates=0),
        "policy-rsa1024": policy_yaml(root, max_rsa=1024),
        "policy-empty": policy_yaml().replace("caCerts: |", 'caCerts: ""'),
        "policy-bad": policy_yaml(root).replace("maxIntermediates", "x")
        + "            maxIntermediate: 4\n",
    }.items():
        (d / (name + ".yaml")).write_text(text)
        paths[name] = str(d / (name + ".yaml"))
    return certs, paths


def attrs(leaf, chain, sans=()):
    out = []
    cn = leaf.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cn:
        out.append('x509pop:x509_pop.subject.common_name="%s"' % cn[0].value)
    out.append('x509pop:x509_pop.serial_number="%s"' % leaf.serial)
    for ca in chain:
        out.append('x509pop:x509_pop.ca.%s="%s"' % (ca.serial, ca.sha1))
    for k, v in sans:
        out.append('x509pop:x509_pop.san.%s="%s"' % (k, v))
    return "\n".join(out) + "\n"


def check(paths, *extra, policy="policy", cert="ec", intermediates="int"):
    args = ["x509pop", "check", "--policy", paths[policy], "--cert", paths[cert]]
    if intermediates:
        args += ["--intermediates", paths[intermediates]]
    return run(*args, *extra)


def assert_fails(r, message):
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr == "anchorctl: " + message + "\n"


# --- success ------------------------------------------------------------------------


def test_ec_leaf_attributes(pki):
    certs, paths = pki
    r = check(paths)
    assert r.returncode == 0, r.stderr
    assert r.stdout == attrs(certs["ec"], [certs["int"], certs["root"]])
    assert r.stderr == ""


def test_ec_leaf_with_key_proves(pki):
    certs, paths = pki
    for key in ("ec.key", "ec-sec1.key"):
        r = check(paths, "--key", paths[key])
        assert r.returncode == 0, r.stderr
        assert r.stdout == attrs(certs["ec"], [certs["int"], certs["root"]]) + (
            "proof of possession: ok\n"
        )


def test_rsa_leaf_with_key_proves(pki):
    certs, paths = pki
    for key in ("rsa.key", "rsa-pkcs1.key"):
        r = check(paths, "--key", paths[key], cert="rsa")
        assert r.returncode == 0, r.stderr
        assert r.stdout == attrs(certs["rsa"], [certs["int"], certs["root"]]) + (
            "proof of possession: ok\n"
        )


def test_intermediates_appended_to_the_cert_file(pki):
    certs, paths = pki
    r = check(paths, "--key", paths["ec.key"], cert="ec-chain", intermediates=None)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(attrs(certs["ec"], [certs["int"], certs["root"]]))


def test_leaf_issued_by_the_anchor(pki):
    certs, paths = pki
    r = check(paths, "--key", paths["direct.key"], cert="direct", intermediates=None)
    assert r.returncode == 0, r.stderr
    assert r.stdout == attrs(certs["direct"], [certs["root"]]) + "proof of possession: ok\n"


def test_an_intermediate_in_caCerts_is_an_anchor(pki):
    certs, paths = pki
    r = check(paths, policy="policy-int", intermediates=None)
    assert r.returncode == 0, r.stderr
    assert r.stdout == attrs(certs["ec"], [certs["int"]])


def test_no_common_name_no_attribute(pki):
    certs, paths = pki
    r = check(paths, cert="nocn")
    assert r.returncode == 0, r.stderr
    assert "common_name" not in r.stdout
    assert r.stdout == attrs(certs["nocn"], [certs["int"], certs["root"]])


def test_trust_domain_gives_san_attributes(pki):
    certs, paths = pki
    r = check(paths, "--trust-domain", "example.org")
    assert r.returncode == 0, r.stderr
    # A later SAN of a type replaces an earlier one; other trust domains,
    # empty values and other schemes are ignored.
    assert r.stdout == attrs(
        certs["ec"],
        [certs["int"], certs["root"]],
        sans=[("environment", "staging"), ("path", "a/b/c")],
    )


def test_other_trust_domain_gives_its_own_sans(pki):
    certs, paths = pki
    r = check(paths, "--trust-domain=other.org")
    assert r.returncode == 0, r.stderr
    assert r.stdout == attrs(
        certs["ec"], [certs["int"], certs["root"]], sans=[("environment", "test")]
    )


def test_at_checks_the_whole_chain(pki):
    certs, paths = pki
    r = check(paths, "--at", "2020-06-01T00:00:00Z", cert="old")
    # The intermediate and root were made now, so at 2020 they are not valid.
    assert_fails(r, "certificate chain verification failed: certificate is not yet valid")


# --- documented failures -------------------------------------------------------------


def test_expired_now(pki):
    _, paths = pki
    assert_fails(check(paths, cert="old"),
                 "certificate chain verification failed: certificate has expired")


def test_at_in_the_future_expired(pki):
    _, paths = pki
    at = (NOW + 60 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_fails(check(paths, "--at", at),
                 "certificate chain verification failed: certificate has expired")


def test_at_in_the_past_not_yet_valid(pki):
    _, paths = pki
    at = (NOW - 2 * DAY).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert_fails(check(paths, "--at", at),
                 "certificate chain verification failed: certificate is not yet valid")


def test_at_offsets_are_applied(pki):
    _, paths = pki
    # The certificates were made valid from NOW - 1 day. An instant written
    # with an offset is that instant: local 23:00 at -05:00 is 04:00Z the
    # next day.
    just_after = NOW - DAY + datetime.timedelta(minutes=2)
    local = just_after.astimezone(datetime.timezone(datetime.timedelta(hours=-5)))
    assert check(paths, "--at", local.strftime("%Y-%m-%dT%H:%M:%S-05:00")).returncode == 0
    just_before = NOW - DAY - datetime.timedelta(minutes=2)
    local = just_before.astimezone(datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
    assert_fails(check(paths, "--at", local.strftime("%Y-%m-%dT%H:%M:%S.250+05:30")),
                 "certificate chain verification failed: certificate is not yet valid")


def test_untrusted_ca(pki):
    _, paths = pki
    assert_fails(check(paths, cert="stray", intermediates=None),
                 "certificate chain verification failed: unable to get local issuer certificate")


def test_missing_intermediate(pki):
    _, paths = pki
    assert_fails(check(paths, intermediates=None),
                 "certificate chain verification failed: unable to get local issuer certificate")


def test_no_digital_signature(pki):
    _, paths = pki
    assert_fails(check(paths, cert="nods"),
                 "certificate does not include digitalSignature key usage")


def test_no_key_usage_extension(pki):
    _, paths = pki
    assert_fails(check(paths, cert="noku"),
                 "certificate does not include digitalSignature key usage")


def test_unsupported_key_type(pki):
    _, paths = pki
    assert_fails(check(paths, cert="ed25519"), "unsupported key type ED25519")


def test_too_many_intermediates(pki):
    _, paths = pki
    assert_fails(check(paths, policy="policy-max0"),
                 "certificate chain verification failed: too many intermediates (1 > 0)")


def test_rsa_key_too_large(pki):
    _, paths = pki
    assert_fails(
        check(paths, policy="policy-rsa1024", cert="rsa"),
        "certificate chain verification failed: RSA key size 2048 exceeds maxRSAKeySize 1024",
    )


def test_wrong_key(pki):
    _, paths = pki
    assert_fails(check(paths, "--key", paths["stray.key"]),
                 "private key does not match the certificate")
    assert_fails(check(paths, "--key", paths["rsa.key"]),
                 "private key does not match the certificate")


def test_policy_errors(pki):
    _, paths = pki
    assert_fails(check(paths, policy="policy-empty"),
                 paths["policy-empty"] + ': policy "x509pop_policy": caCerts is required')
    assert_fails(
        check(paths, policy="policy-bad"),
        paths["policy-bad"]
        + ': spec.policies[0].requiredAttestors[0].config: unknown key "maxIntermediate"',
    )
    r = run("x509pop", "check", "--policy", "/nonexistent.yaml", "--cert", paths["ec"])
    assert_fails(r, "cannot read /nonexistent.yaml: No such file or directory")


def test_cert_file_errors(pki, tmp_path):
    _, paths = pki
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    for cert in ("/nonexistent.pem", str(empty), paths["ec.key"]):
        r = run("x509pop", "check", "--policy", paths["policy"], "--cert", cert)
        assert r.returncode == 1, r.stderr
        assert r.stdout == ""
        assert r.stderr.startswith("anchorctl: ")


# --- config validate --------------------------------------------------------------------


def test_config_validate(pki, tmp_path):
    certs, paths = pki
    r = run("config", "validate", paths["policy"])
    assert (r.returncode, r.stdout, r.stderr) == (
        0, paths["policy"] + ": valid (AgentAttestation v1, 1 policy)\n", "")
    two = tmp_path / "two.yaml"
    two.write_text(policy_yaml(certs["root"], name="a")
                   + policy_yaml(certs["int"], name="b").split("policies:\n")[1])
    r = run("config", "validate", str(two))
    assert (r.returncode, r.stdout) == (0, str(two) + ": valid (AgentAttestation v1, 2 policies)\n")


def test_config_validate_refuses(pki, tmp_path):
    certs, paths = pki
    cases = {
        "empty-ca": (policy_yaml().replace("caCerts: |", 'caCerts: ""'),
                     'policy "x509pop_policy": caCerts is required'),
        "not-pem": (policy_yaml().replace("caCerts: |", "caCerts: hello"),
                    'policy "x509pop_policy": could not parse any PEM certificates'),
        "section": ("section: Other\nschema: v1\n", 'section: expected "AgentAttestation" (got "Other")'),
        "alias": ("section: &a AgentAttestation\n",
                  "line 1, column 10: YAML anchors and aliases are not allowed"),
        "int": (policy_yaml(certs["root"], max_intermediates="4.0"),
                'policy "x509pop_policy": maxIntermediates must be a non-negative integer (got "4.0")'),
        "rsa": (policy_yaml(certs["root"], max_rsa="0"),
                'policy "x509pop_policy": maxRSAKeySize must be a positive integer (got "0")'),
        "dup": (policy_yaml(certs["root"], name="a")
                + policy_yaml(certs["root"], name="a").split("policies:\n")[1],
                'spec.policies[1].name: duplicate policy name "a"'),
    }
    for name, (text, message) in cases.items():
        p = tmp_path / (name + ".yaml")
        p.write_text(text)
        r = run("config", "validate", str(p))
        assert_fails(r, str(p) + ": " + message)
    p = tmp_path / "large.yaml"
    p.write_text("#" * (1024 * 1024 + 1))
    assert_fails(run("config", "validate", str(p)),
                 str(p) + ": document too large (1048577 bytes, at most 1048576)")
    p = tmp_path / "notca.yaml"
    p.write_text(policy_yaml(certs["ec"]))
    r = run("config", "validate", str(p))
    assert r.returncode == 1
    assert "is not a CA certificate" in r.stderr


# --- usage ----------------------------------------------------------------------------------


def assert_usage(r, message):
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr.startswith("anchorctl: " + message + "\n"), r.stderr
    assert "usage: anchorctl" in r.stderr


def test_usage_errors(pki):
    _, paths = pki
    base = ["x509pop", "check", "--policy", paths["policy"], "--cert", paths["ec"]]
    assert run().returncode == 2
    assert_usage(run("frobnicate"), 'unknown command "frobnicate"')
    assert_usage(run("x509pop"), "x509pop: missing command (check)")
    assert_usage(run("x509pop", "verify"), 'x509pop: unknown command "verify"')
    assert_usage(run("config"), "config: missing command (set, get, history, validate)")
    assert_usage(run("config", "set"), "config set: missing FILE")
    assert_usage(run("config", "validate"), "config validate: missing FILE")
    assert_usage(run("config", "validate", "a", "b"), 'unexpected argument "b"')
    assert_usage(run("config", "validate", "--strict", "a"), 'unknown flag "--strict"')
    assert_usage(run("x509pop", "check", "--cert", paths["ec"]), "--policy is required")
    assert_usage(run("x509pop", "check", "--policy", paths["policy"]), "--cert is required")
    assert_usage(run(*base, "--keys", "k"), 'unknown flag "--keys"')
    assert_usage(run(*base, "-k", "k"), 'unknown flag "-k"')
    assert_usage(run(*base, "--cert", paths["ec"]), "--cert given more than once")
    assert_usage(run(*base, "--key"), "--key needs a value (KEY.pem)")
    assert_usage(run(*base, "--key="), "--key needs a value (KEY.pem)")
    assert_usage(run(*base, "--key", "--at", "x"), "--key needs a value (KEY.pem)")
    assert_usage(run(*base, "extra"), 'unexpected argument "extra"')
    assert_usage(run("help", "nothing"), 'help: unknown topic "nothing"')


@pytest.mark.parametrize("td", ["Example.org", "example.org/x", "spiffe://example.org",
                                "exa mple", "", "example.org:443", "a" * 256])
def test_bad_trust_domain(pki, td):
    _, paths = pki
    r = check(paths, "--trust-domain=" + td)
    assert r.returncode == 2, r.stderr
    if td:
        assert r.stderr.startswith("anchorctl: --trust-domain: invalid trust domain: ")


@pytest.mark.parametrize("at", [
    "2025-01-01", "2025-01-01T00:00:00", "2025-01-01 00:00:00Z", "2025-1-01T00:00:00Z",
    "2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2025-01-01T24:00:00Z",
    "2025-01-01T00:60:00Z", "2025-01-01T00:00:60Z", "2025-01-01T00:00:00.Z",
    "2025-01-01T00:00:00+0100", "2025-01-01T00:00:00+24:00", "2025-01-01T00:00:00Z ",
    "1735689600", "now", "+2025-01-01T00:00:00Z",
])
def test_bad_at(pki, at):
    _, paths = pki
    r = check(paths, "--at=" + at)
    assert_usage(r, '--at: not an RFC 3339 time (got "%s"), e.g. 2025-01-01T00:00:00Z' % at)


def test_good_at_forms(pki):
    _, paths = pki
    day = (NOW + DAY).strftime("%Y-%m-%d")
    for at in (day + "T00:00:00Z", day + "t00:00:00z", day + "T00:00:00.123456789Z",
               day + "T01:00:00+01:00", day + "T00:00:00-00:00"):
        r = check(paths, "--at", at)
        assert r.returncode == 0, (at, r.stderr)


def test_help(pki):
    for args in (["--help"], ["-h"], ["help"]):
        r = run(*args)
        assert r.returncode == 0 and "usage: anchorctl" in r.stdout and r.stderr == ""
    for args in (["help", "x509pop"], ["x509pop", "--help"], ["x509pop", "check", "--help"],
                 ["help", "x509pop", "check"]):
        r = run(*args)
        assert r.returncode == 0 and "anchorctl x509pop check --policy" in r.stdout
    for args in (["help", "config"], ["config", "validate", "-h"]):
        r = run(*args)
        assert r.returncode == 0 and "anchorctl config validate FILE" in r.stdout


def test_control_characters_cannot_forge_lines(pki, tmp_path):
    certs, paths = pki
    cn = 'evil\nx509pop:x509_pop.serial_number="forged"\x1b[31m\u0085'
    leaf = make_cert(cn, ec_key(), issuer=certs["int"], serial=0x77)
    p = tmp_path / "evil.pem"
    p.write_text(leaf.pem)
    r = run("x509pop", "check", "--policy", paths["policy"], "--cert", str(p),
            "--intermediates", paths["int"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == ('x509pop:x509_pop.subject.common_name="evil\\x0a'
                        'x509pop:x509_pop.serial_number=\\"forged\\"\\x1b[31m\\xc2\\x85"')
    assert lines[1] == 'x509pop:x509_pop.serial_number="77"'
    assert len(lines) == 4
