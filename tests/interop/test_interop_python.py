"""Interop with python3-grpcio (gRPC's C core), both directions, over a unix
socket and over TLS 1.3 with client certificates.

  grpcio client -> libanchor server (interop_server)
  libanchor client (interop_client) -> grpcio server

Every case of cases.py runs in each direction and on each transport, and is
held to the same expectations (cases.check).
"""

import os
import socket
import time

import grpc
import pytest

import cases
import py_peer
from conftest import AnchorServer, run_anchor_client
from echo_pb import method as method_path

TRANSPORTS = ["unix", "tls"]
NAMES = [c["name"] for c in cases.CASES]


# ------------------------------------------- grpcio client -> anchor server


@pytest.fixture(scope="module", params=TRANSPORTS)
def anchor_channel(request, pki, module_sockdir):
    d = os.path.join(module_sockdir, request.param)
    os.mkdir(d)
    srv = AnchorServer(d, pki, tls=request.param == "tls", unix=request.param == "unix")
    if request.param == "unix":
        ch = py_peer.channel("unix:" + srv.unix)
    else:
        ch = py_peer.channel("127.0.0.1:%d" % srv.port, ca=pki.read("ca.pem"),
                             cert=pki.read("client.pem"), key=pki.read("client.key"),
                             server_name="localhost")
    yield request.param, ch, srv
    ch.close()
    try:
        srv.assert_clean_exit()
    finally:
        srv.close()


@pytest.mark.parametrize("name", NAMES)
def test_grpcio_client_to_anchor_server(anchor_channel, name):
    _, ch, _ = anchor_channel
    cases.check(py_peer.run_case(ch, cases.BY_NAME[name]))


def test_grpcio_client_sees_its_peer_identity(anchor_channel):
    """The server's view of the caller: SO_PEERCRED of this very process on
    the unix socket; on TLS the client certificate's SPIFFE ID and the
    RFC 9266 exporter."""
    transport, ch, _ = anchor_channel
    r = py_peer.run_case(ch, {"name": "peer", "kind": "unary",
                              "method": "/anchor.interop.Echo/Peer", "requests": [{}]})
    assert r["code"] == 0, r
    info = dict(r["replies"][0]["metadata"])
    assert info["transport"] == transport, info
    if transport == "unix":
        assert info["pid"] == str(os.getpid()), info
        assert info["uid"] == str(os.getuid()) and info["gid"] == str(os.getgid()), info
    else:
        assert info["peer_uri"] == "spiffe://interop.test/client", info
        assert info["exporter_len"] == "32", info
        assert info["addr"].startswith("127.0.0.1:"), info


def test_grpcio_client_without_certificate_is_refused(pki, sockdir, procs):
    """Hostile twin of the TLS cases: the server requires a client
    certificate; a client with none, or one from another CA, gets no call
    through, and the server keeps serving."""
    srv = procs.anchor_server(sockdir, pki, tls=True, unix=False)
    target = "127.0.0.1:%d" % srv.port
    echo = {"name": "unary", "kind": "unary", "method": "/anchor.interop.Echo/Echo",
            "timeout_ms": 5000, "requests": [{"text": "x"}]}
    for cert, key in ((None, None), (pki.read("stranger.pem"), pki.read("stranger.key"))):
        ch = py_peer.channel(target, ca=pki.read("ca.pem"), cert=cert, key=key,
                             server_name="localhost")
        r = py_peer.run_case(ch, echo)
        ch.close()
        assert r["code"] == cases.UNAVAILABLE, r
    ch = py_peer.channel(target, ca=pki.read("ca.pem"), cert=pki.read("client.pem"),
                         key=pki.read("client.key"), server_name="localhost")
    r = py_peer.run_case(ch, echo)
    ch.close()
    assert r["code"] == 0, r
    srv.assert_clean_exit()


# ------------------------------------------- anchor client -> grpcio server


@pytest.fixture(scope="module", params=TRANSPORTS)
def anchor_client_results(request, pki, module_sockdir):
    d = os.path.join(module_sockdir, "to-py-" + request.param)
    os.mkdir(d)
    if request.param == "unix":
        path = os.path.join(d, "py.sock")
        server, _ = py_peer.serve(unix=path)
        out = run_anchor_client(cases.CASES, d, unix=path)
    else:
        server, port = py_peer.serve(cert=pki.read("server.pem"), key=pki.read("server.key"),
                                     ca=pki.read("ca.pem"))
        out = run_anchor_client(cases.CASES, d, port=port, pki=pki)
    server.stop(0)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_anchor_client_to_grpcio_server(anchor_client_results, name):
    results, rc, err = anchor_client_results
    assert name in results, "no result for %s (exit %s): %s" % (name, rc, err[-3000:])
    cases.check(results[name])


def test_anchor_client_exits_clean_after_grpcio(anchor_client_results):
    results, rc, err = anchor_client_results
    assert rc == 0, err[-3000:]
    assert not any(m in err for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:")), err


def test_anchor_client_refuses_untrusted_grpcio_server(pki, sockdir):
    """Hostile twin: the client trusts another CA, so the handshake fails
    and the call ends UNAVAILABLE (no message reaches the server)."""
    server, port = py_peer.serve(cert=pki.read("server.pem"), key=pki.read("server.key"))
    try:
        results, rc, err = run_anchor_client([cases.BY_NAME["unary"]], sockdir, port=port,
                                             pki=pki, ca="other-ca.pem", timeout=60)
    finally:
        server.stop(0)
    assert rc == 0, err
    assert results["unary"]["code"] == cases.UNAVAILABLE, results


def test_grpcio_client_over_ipv6_loopback(pki, sockdir, procs):
    """TLS on [::1]: the listener, the client's view and the peer address."""
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    srv = procs.anchor_server(sockdir, pki, tls=True, unix=False, extra=["--tls-host", "::1"])
    ch = py_peer.channel("[::1]:%d" % srv.port, ca=pki.read("ca.pem"),
                         cert=pki.read("client.pem"), key=pki.read("client.key"),
                         server_name="localhost")
    try:
        cases.check(py_peer.run_case(ch, cases.BY_NAME["unary"]))
        r = py_peer.run_case(ch, {"name": "peer", "kind": "unary",
                                  "method": "/anchor.interop.Echo/Peer", "requests": [{}]})
    finally:
        ch.close()
    info = dict(r["replies"][0]["metadata"])
    assert info["addr"].startswith("[::1]:"), info
    srv.assert_clean_exit()


def test_grpcio_recovers_from_idle_goaway(sockdir, procs):
    """The server closes idle connections (GOAWAY NO_ERROR, here after
    500 ms); grpcio reconnects by itself for the next call, and so does a
    program on libanchor's client that makes a new client on on_close."""
    srv = procs.anchor_server(sockdir, extra=["--idle-timeout-ms", "500"])
    ch = py_peer.channel("unix:" + srv.unix)
    try:
        cases.check(py_peer.run_case(ch, cases.BY_NAME["unary"]))
        time.sleep(1.5)
        cases.check(py_peer.run_case(ch, cases.BY_NAME["unary"]))
    finally:
        ch.close()
    calls = [dict(cases.BY_NAME["unary"], name="first"),
             {"name": "idle", "kind": "sleep", "timeout_ms": 1500},
             dict(cases.BY_NAME["unary"], name="after")]
    res, rc, err = run_anchor_client(calls, sockdir, unix=srv.unix)
    assert rc == 0, err
    for n in ("first", "after"):
        cases.check(dict(res[n], name="unary"))
    assert "connection closed" in err, err
    srv.assert_clean_exit()


def test_grpcio_gzip_is_unimplemented(sockdir, procs):
    """Compression is not implemented (docs/rpc.md): a grpcio client that
    compresses gets UNIMPLEMENTED with the documented message, and the same
    channel works again without compression."""
    srv = procs.anchor_server(sockdir)
    ch = py_peer.channel("unix:" + srv.unix)
    try:
        mc = ch.unary_unary(method_path("Echo"), request_serializer=lambda b: b,
                            response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as e:
            mc(b"\x0a\x01x" * 100, timeout=5, compression=grpc.Compression.Gzip)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, e.value
        assert e.value.details() == "grpc-encoding gzip is not supported", e.value.details()
        assert mc(b"\x0a\x01x", timeout=5) == b"\x0a\x01x"
    finally:
        ch.close()
    srv.assert_clean_exit()


def test_every_case_passes_with_tight_buffers(sockdir, procs):
    """The back-pressure paths (output buffer full: stop pulling frames and
    reading; call send queue full: send fails, the handler retries) taken
    all the time: a 16 KiB output buffer and a 64 KiB send queue per call,
    far below the 1 MiB messages of some cases. Every case still passes."""
    srv = procs.anchor_server(sockdir, extra=["--max-output-buffer", "16384",
                                              "--max-call-send-queue", "65536"])
    ch = py_peer.channel("unix:" + srv.unix)
    try:
        for c in cases.CASES:
            cases.check(py_peer.run_case(ch, c))
    finally:
        ch.close()
    srv.assert_clean_exit()
