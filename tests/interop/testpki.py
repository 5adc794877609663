"""A throwaway PKI for the interop tests and the RPC benchmark (python3-cryptography):
a CA, a server certificate (DNS localhost, IP 127.0.0.1, a SPIFFE ID), a
client certificate (a SPIFFE ID), and an unrelated CA with its own client
certificate (the stranger). EC P-256 keys, valid for two days.
"""

import datetime
import ipaddress
import os


def make(d, trust_domain="interop.test"):
    """Writes ca.pem, server.pem/.key, client.pem/.key, other-ca.pem and
    stranger.pem/.key into directory d."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    later = now + datetime.timedelta(days=2)

    def write(name, data):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    def key_pem(k):
        return k.private_bytes(serialization.Encoding.PEM,
                               serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    def ca(name):
        k = ec.generate_private_key(ec.SECP256R1())
        subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        c = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
             .public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now).not_valid_after(later)
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                          False, False), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()),
                            critical=False)
             .sign(k, hashes.SHA256()))
        return k, c

    def leaf(ca_key, ca_cert, cn, sans, eku):
        k = ec.generate_private_key(ec.SECP256R1())
        c = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
             .issuer_name(ca_cert.subject).public_key(k.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now).not_valid_after(later)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                          False, False), critical=True)
             .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
             .add_extension(x509.SubjectAlternativeName(sans), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                 ca_key.public_key()), critical=False)
             .sign(ca_key, hashes.SHA256()))
        return k, c

    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    ca_key, ca_cert = ca("anchor interop test CA")
    write("ca.pem", pem(ca_cert))
    sk, sc = leaf(ca_key, ca_cert, "server", [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.UniformResourceIdentifier("spiffe://%s/server" % trust_domain)],
        ExtendedKeyUsageOID.SERVER_AUTH)
    write("server.pem", pem(sc))
    write("server.key", key_pem(sk))
    ck, cc = leaf(ca_key, ca_cert, "client", [
        x509.UniformResourceIdentifier("spiffe://%s/client" % trust_domain)],
        ExtendedKeyUsageOID.CLIENT_AUTH)
    write("client.pem", pem(cc))
    write("client.key", key_pem(ck))
    other_key, other_cert = ca("some other CA")
    write("other-ca.pem", pem(other_cert))
    ok, oc = leaf(other_key, other_cert, "stranger", [
        x509.UniformResourceIdentifier("spiffe://elsewhere.test/client")],
        ExtendedKeyUsageOID.CLIENT_AUTH)
    write("stranger.pem", pem(oc))
    write("stranger.key", key_pem(ok))
