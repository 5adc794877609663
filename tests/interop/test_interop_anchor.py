"""libanchor's client against libanchor's server (the pairing anchor's own
programs use), over a unix socket and TLS 1.3 with client certificates; the
channel binding both ends compute; and the client against servers that
misbehave (closing, silent, talking garbage, sending too much).
"""

import os
import socket
import ssl
import struct
import threading
import time

import hpack
import pytest

import cases
import h2raw
import py_peer
from conftest import AnchorServer, run_anchor_client
from echo_pb import method

TRANSPORTS = ["unix", "tls"]
NAMES = [c["name"] for c in cases.CASES]
PEER_CASE = {"name": "peer", "kind": "unary", "method": method("Peer"), "requests": [{}]}


@pytest.fixture(scope="module", params=TRANSPORTS)
def results(request, pki, module_sockdir):
    d = os.path.join(module_sockdir, "a2a-" + request.param)
    os.mkdir(d)
    tls = request.param == "tls"
    srv = AnchorServer(d, pki, tls=tls, unix=not tls)
    try:
        if tls:
            out = run_anchor_client(cases.CASES + [PEER_CASE], d, port=srv.port, pki=pki)
        else:
            out = run_anchor_client(cases.CASES + [PEER_CASE], d, unix=srv.unix)
        srv.assert_clean_exit()
    finally:
        srv.close()
    return request.param, out


@pytest.mark.parametrize("name", NAMES)
def test_anchor_client_to_anchor_server(results, name):
    _, (res, rc, err) = results
    assert name in res, "no result for %s (exit %s): %s" % (name, rc, err[-3000:])
    cases.check(res[name])


def test_both_ends_agree_on_identity_and_channel_binding(results):
    """The server sees the client's SPIFFE ID (unix: its pid), the client the
    server's; on TLS both computed the same RFC 9266 tls-exporter value,
    which x509pop signs so that a proof cannot be relayed."""
    transport, (res, rc, err) = results
    assert rc == 0, err
    assert res["peer"]["code"] == 0, res["peer"]
    server_view = dict(res["peer"]["replies"][0]["metadata"])
    client_view = res["__client_peer__"]
    assert server_view["transport"] == transport
    if transport == "unix":
        assert server_view["uid"] == str(os.getuid())
        assert "exporter" not in server_view and client_view.get("exporter") is None
    else:
        assert server_view["peer_uri"] == "spiffe://interop.test/client"
        assert client_view["server_uri"] == "spiffe://interop.test/server"
        assert len(server_view["exporter"]) == 64
        assert server_view["exporter"] == client_view["exporter"]


def test_anchor_client_exits_clean(results):
    _, (res, rc, err) = results
    assert rc == 0, err[-3000:]
    assert not any(m in err for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:")), err


def test_each_connection_has_its_own_exporter(pki, sockdir, procs):
    srv = procs.anchor_server(sockdir, pki, tls=True, unix=False)
    seen = []
    for _ in range(2):
        res, rc, err = run_anchor_client([PEER_CASE], sockdir, port=srv.port, pki=pki)
        assert rc == 0, err
        seen.append(res["__client_peer__"]["exporter"])
        assert dict(res["peer"]["replies"][0]["metadata"])["exporter"] == seen[-1]
    assert seen[0] != seen[1]
    srv.assert_clean_exit()


# -------------------------------------------------- servers that misbehave


class RawServer:
    """A unix-socket server that does `behaviour` with each connection."""

    def __init__(self, path, behaviour):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.behaviour = behaviour
        self.conns = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.conns.append(c)
            try:
                self.behaviour(c)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.t.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


def _close_at_once(c):
    c.close()


def _garbage(c):
    c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" + b"\xff" * 100)


def _silent(c):
    pass


@pytest.mark.parametrize("behaviour,expect", [
    (_close_at_once, {cases.UNAVAILABLE}),
    (_garbage, {cases.UNAVAILABLE, cases.INTERNAL}),
    (_silent, {cases.DEADLINE_EXCEEDED}),
], ids=["closes", "garbage", "silent"])
def test_anchor_client_against_broken_server(sockdir, behaviour, expect):
    """Every call ends with a status, none hangs, the client exits clean."""
    path = os.path.join(sockdir, "raw.sock")
    rs = RawServer(path, behaviour)
    calls = [dict(cases.BY_NAME["unary"], name="u%d" % i, timeout_ms=1500) for i in range(3)]
    calls.append(dict(cases.BY_NAME["server_stream"], name="stream", timeout_ms=1500))
    try:
        res, rc, err = run_anchor_client(calls, sockdir, unix=path, timeout=60)
    finally:
        rs.close()
    assert rc == 0, err
    for c in calls:
        assert res[c["name"]]["code"] in expect, res[c["name"]]
    assert not any(m in err for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:")), err


def test_anchor_client_refuses_a_response_over_its_limit(sockdir):
    """grpcio answers 5 MiB to a client that accepts 4 MiB (the library's
    default): RESOURCE_EXHAUSTED, and the next call on the client works."""
    path = os.path.join(sockdir, "py.sock")
    server, _ = py_peer.serve(unix=path)
    big = {"name": "big", "kind": "unary", "method": method("Echo"),
           "requests": [{"payload_len": 5 << 20}]}
    small = dict(cases.BY_NAME["unary"])
    try:
        cf_res = run_anchor_client([big, small], sockdir, unix=path, timeout=60,
                                   extra=["--max-recv", str(4 << 20)])
    finally:
        server.stop(0)
    res, rc, err = cf_res
    assert rc == 0, err
    assert res["big"]["code"] == cases.RESOURCE_EXHAUSTED, res["big"]
    cases.check(res["unary"])


# ------------------------------------------- responses that break the rules


def _run_against_raw(sockdir, respond, n_calls=1, timeout_ms=3000, seen=None, idle_ms=0):
    path = os.path.join(sockdir, "rawh2.sock")

    threads = []

    def behaviour(c):
        t = threading.Thread(target=h2raw.serve_raw, args=(c, respond, 20, seen), daemon=True)
        threads.append(t)
        t.start()

    rs = RawServer(path, behaviour)
    calls = [dict(cases.BY_NAME["unary"], name="c%d" % i, timeout_ms=timeout_ms)
             for i in range(n_calls)]
    if idle_ms:
        calls.append({"name": "idle", "kind": "sleep", "timeout_ms": idle_ms})
    try:
        res, rc, err = run_anchor_client(calls, sockdir, unix=path, timeout=60)
        for t in threads:  # each ends at the client's EOF, having read everything
            t.join(10)
    finally:
        rs.close()
    assert rc == 0, err
    assert not any(m in err for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:")), err
    return [res["c%d" % i] for i in range(n_calls)]


# gRPC doc/http-grpc-status-mapping.md: HTTP status without grpc-status.
@pytest.mark.parametrize("http,code", [
    (400, cases.INTERNAL), (401, cases.UNAUTHENTICATED), (403, cases.PERMISSION_DENIED),
    (404, cases.UNIMPLEMENTED), (429, cases.UNAVAILABLE), (502, cases.UNAVAILABLE),
    (503, cases.UNAVAILABLE), (504, cases.UNAVAILABLE), (500, 2)])
def test_anchor_client_maps_http_status(sockdir, http, code):
    def respond(sid, n, enc):
        return h2raw.response_headers(enc, sid, [(":status", str(http)),
                                                 ("content-type", "text/plain")], True)

    (r,) = _run_against_raw(sockdir, respond)
    assert r["code"] == code, r


# gRPC PROTOCOL-HTTP2.md "Errors": RST_STREAM codes seen by a client.
@pytest.mark.parametrize("h2code,code", [
    (h2raw.REFUSED_STREAM, cases.UNAVAILABLE), (h2raw.CANCEL, cases.CANCELLED),
    (h2raw.ENHANCE_YOUR_CALM, cases.RESOURCE_EXHAUSTED), (h2raw.INTERNAL_ERROR, cases.INTERNAL),
    (h2raw.PROTOCOL_ERROR, cases.INTERNAL), (12, cases.PERMISSION_DENIED)])
def test_anchor_client_maps_rst_stream(sockdir, h2code, code):
    def respond(sid, n, enc):
        return h2raw.rst_stream(sid, h2code)

    (r,) = _run_against_raw(sockdir, respond)
    assert r["code"] == code, r


def test_anchor_client_decodes_grpc_message_leniently(sockdir):
    """grpc-message with invalid percent-encoding must not be an error nor
    lose the message (PROTOCOL-HTTP2: 'MUST NOT error or throw away')."""
    def respond(sid, n, enc):
        return h2raw.response_headers(enc, sid, [
            (":status", "200"), ("content-type", "application/grpc"),
            ("grpc-status", "3"), ("grpc-message", "bad %zz %4 %E6%97%A5 end%")], True)

    (r,) = _run_against_raw(sockdir, respond)
    assert r["code"] == cases.INVALID_ARGUMENT, r
    assert r["message"] in ("bad %zz %4 日 end%", "bad %zz %4 %E6%97%A5 end%"), r


def test_anchor_client_refuses_compressed_message_without_encoding(sockdir):
    """A message with the compressed flag and no grpc-encoding: INTERNAL."""
    def respond(sid, n, enc):
        return (h2raw.response_headers(enc, sid, [(":status", "200"),
                                                  ("content-type", "application/grpc")], False)
                + h2raw.frame(h2raw.DATA, 0, sid, h2raw.grpc_message(b"\x0a\x01x", compressed=1))
                + h2raw.response_headers(enc, sid, [("grpc-status", "0")], True))

    (r,) = _run_against_raw(sockdir, respond)
    assert r["code"] in (cases.INTERNAL, cases.UNIMPLEMENTED), r
    assert r["replies"] == [], r


def test_anchor_client_sees_goaway_as_unavailable(sockdir):
    """The server sends GOAWAY (last stream 0) and closes: the call that it
    never processed ends UNAVAILABLE."""
    def respond(sid, n, enc):
        return h2raw.frame(h2raw.GOAWAY, 0, 0, struct.pack(">II", 0, h2raw.NO_ERROR))

    (r,) = _run_against_raw(sockdir, respond)
    assert r["code"] == cases.UNAVAILABLE, r


def test_server_ends_a_client_stream_early(pki, sockdir, procs):
    """The second message of a client stream is over the server's limit: the
    server ends the call RESOURCE_EXHAUSTED while the client is still
    sending; the client reports it, and its next call on the same
    connection works. Same with grpcio as the client."""
    srv = procs.anchor_server(sockdir, pki)
    over = {"name": "over", "kind": "client_stream", "method": method("Collect"),
            "requests": [{"text": "a"}, {"text": "b", "payload_len": 5 << 20},
                         {"text": "c"}]}
    res, rc, err = run_anchor_client([over, cases.BY_NAME["unary"]], sockdir, unix=srv.unix)
    assert rc == 0, err
    assert res["over"]["code"] == cases.RESOURCE_EXHAUSTED, res["over"]
    cases.check(res["unary"])
    ch = py_peer.channel("unix:" + srv.unix)
    try:
        assert py_peer.run_case(ch, over)["code"] == cases.RESOURCE_EXHAUSTED
        cases.check(py_peer.run_case(ch, cases.BY_NAME["unary"]))
    finally:
        ch.close()
    srv.assert_clean_exit()


def test_anchor_client_deadline_resets_the_stream(sockdir):
    """A server that never answers: the client ends the call locally with
    DEADLINE_EXCEEDED, sends grpc-timeout, and resets the stream with CANCEL
    (docs/rpc.md)."""
    class Timed(list):
        def append(self, f):
            super().append(f + (time.monotonic(),))

    seen = Timed()
    t0 = time.monotonic()
    # The client's loop keeps running for a second after the deadline (a
    # program does; frames still queued when the client is freed are lost).
    (r,) = _run_against_raw(sockdir, lambda sid, n, enc: b"", timeout_ms=300, seen=seen,
                            idle_ms=1000)
    assert r["code"] == cases.DEADLINE_EXCEEDED, r
    assert r["elapsed_ms"] < 2000, r
    assert time.monotonic() - t0 < 20
    heads = [f for f in seen if f[0] == h2raw.HEADERS]
    assert heads, seen
    hdrs = dict(hpack.Decoder().decode(heads[0][3]))
    timeout = hdrs.get("grpc-timeout", "")
    assert timeout[-1:] in "HMSmun" and 1 <= len(timeout) - 1 <= 8, hdrs
    assert hdrs.get("te") == "trailers" and hdrs.get(":method") == "POST", hdrs
    assert hdrs.get("content-type", "").startswith("application/grpc"), hdrs
    rsts = [f for f in seen if f[0] == h2raw.RST_STREAM and f[2] == heads[0][2]]
    assert rsts and struct.unpack(">I", rsts[0][3])[0] == h2raw.CANCEL, seen
    assert 0.2 < rsts[0][4] - heads[0][4] < 1.25, "RST_STREAM not sent at the deadline"


def test_anchor_client_needs_trailers(sockdir):
    """Headers and a message but END_STREAM without trailers: INTERNAL."""
    def respond(sid, n, enc):
        return (h2raw.response_headers(enc, sid, [(":status", "200"),
                                                  ("content-type", "application/grpc")], False)
                + h2raw.frame(h2raw.DATA, h2raw.END_STREAM, sid,
                              h2raw.grpc_message(b"\x0a\x01x")))

    (r,) = _run_against_raw(sockdir, respond)
    assert r["code"] == cases.INTERNAL, r


def _tls_server(pki, path_unused, tweak, on_conn=None):
    """A TLS server on 127.0.0.1 (python ssl) that completes handshakes the
    way tweak(ctx) sets it up, then says nothing, or hands the connection
    to on_conn (in a thread of its own). Returns (port, stop)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.path("server.pem"), pki.path("server.key"))
    tweak(ctx)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    ls.settimeout(0.2)
    stop = threading.Event()
    conns = []
    threads = []

    def run():
        while not stop.is_set():
            try:
                c, _ = ls.accept()
            except (socket.timeout, OSError):
                continue
            try:
                c.settimeout(5)
                conns.append(ctx.wrap_socket(c, server_side=True))
            except (ssl.SSLError, OSError):
                c.close()
                continue
            if on_conn is not None:
                th = threading.Thread(target=on_conn, args=(conns[-1],), daemon=True)
                threads.append(th)
                th.start()

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def close():
        for th in threads:  # each ends at the client's EOF, having read everything
            th.join(10)
        stop.set()
        t.join(5)
        for c in conns:
            c.close()
        ls.close()

    return ls.getsockname()[1], close


@pytest.mark.parametrize("tweak", [
    lambda ctx: ctx.set_alpn_protocols(["http/1.1"]),
    lambda ctx: None,
    lambda ctx: setattr(ctx, "maximum_version", ssl.TLSVersion.TLSv1_2),
], ids=["alpn-http1", "no-alpn", "tls12"])
def test_anchor_client_refuses_tls_without_h2_or_13(pki, sockdir, tweak):
    """The client insists on ALPN h2 and TLS 1.3 (docs/rpc.md): against a
    server without them every call ends UNAVAILABLE, promptly."""
    port, close = _tls_server(pki, sockdir, tweak)
    calls = [dict(cases.BY_NAME["unary"], name="u", timeout_ms=5000)]
    try:
        res, rc, err = run_anchor_client(calls, sockdir, port=port, pki=pki, timeout=60)
    finally:
        close()
    assert rc == 0, err
    assert res["u"]["code"] == cases.UNAVAILABLE, res["u"]
    assert res["u"]["elapsed_ms"] < 4000, res["u"]


def test_anchor_client_free_says_goodbye(sockdir):
    """A client freed right after its last call ended (here on a deadline)
    still puts its last frames on the wire: the RST_STREAM(CANCEL) of the
    call and a GOAWAY(NO_ERROR) (rpc.h: best effort, non-blocking)."""
    seen = []
    (r,) = _run_against_raw(sockdir, lambda sid, n, enc: b"", timeout_ms=300, seen=seen)
    assert r["code"] == cases.DEADLINE_EXCEEDED, r
    goaways = [f for f in seen if f[0] == h2raw.GOAWAY]
    assert goaways, [f[:3] for f in seen]
    assert struct.unpack(">II", goaways[0][3][:8])[1] == h2raw.NO_ERROR, goaways


def test_anchor_client_free_says_goodbye_over_tls(pki, sockdir):
    """The same over TLS 1.3: the GOAWAY goes out through the TLS session."""
    seen = []
    port, close = _tls_server(
        pki, sockdir, lambda ctx: ctx.set_alpn_protocols(["h2"]),
        on_conn=lambda c: h2raw.serve_raw(c, lambda sid, n, enc: b"", 20, seen))
    calls = [dict(cases.BY_NAME["unary"], name="u", timeout_ms=300)]
    try:
        res, rc, err = run_anchor_client(calls, sockdir, port=port, pki=pki, cert=False,
                                         timeout=60)
    finally:
        close()
    assert rc == 0, err
    assert res["u"]["code"] == cases.DEADLINE_EXCEEDED, res["u"]
    goaways = [f for f in seen if f[0] == h2raw.GOAWAY]
    assert goaways, [f[:3] for f in seen]


def test_anchor_client_to_nothing(pki, sockdir):
    """Nobody listens: a unix path that does not exist fails at connect, a
    refused TCP port ends every call UNAVAILABLE at once."""
    calls = [dict(cases.BY_NAME["unary"], name="u%d" % i, timeout_ms=5000) for i in range(2)]
    res, rc, err = run_anchor_client(calls, sockdir, unix=os.path.join(sockdir, "none.sock"),
                                     timeout=30)
    assert rc != 0 and "none.sock" in err, (rc, err)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # bound, never listened: the port refuses
    res, rc, err = run_anchor_client(calls, sockdir, port=port, pki=pki, timeout=30)
    assert rc == 0, err
    for c in calls:
        assert res[c["name"]]["code"] == cases.UNAVAILABLE, res[c["name"]]
        assert res[c["name"]]["elapsed_ms"] < 2000, res[c["name"]]
    # the operator is told the real cause, not "closed by peer"
    assert "connect failed: Connection refused" in err, err
