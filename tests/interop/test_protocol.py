"""libanchor's gRPC server against the wire rules of gRPC's PROTOCOL-HTTP2
and RFC 9113, with hand-built frames (h2raw.py): every status the server
returns by itself (docs/rpc.md, row by row, exact message), Trailers-Only
responses, grpc-timeout parsing in every unit, binary headers, content
types, TLS version and ALPN. Each test also checks that the connection (or
the server) goes on, and that the server exits clean (ASan).
"""

import socket
import ssl
import time

import pytest

import cases
import h2raw
from echo_pb import method
from server_util import assert_healthy, raw, server_factory  # noqa: F401


def test_tls_without_h2_alpn_is_refused(server_factory, pki):
    srv = server_factory()
    ctx = ssl.create_default_context(cafile=pki.path("ca.pem"))
    ctx.set_alpn_protocols(["http/1.1"])
    raw_sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    refused = False
    try:
        s = ctx.wrap_socket(raw_sock, server_hostname="localhost")
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        refused = h2raw.wait_eof(s, 5) is not None
        s.close()
    except (ssl.SSLError, OSError):
        refused = True
    assert refused
    assert_healthy(srv)
    srv.assert_clean_exit()


def test_tls12_client_is_refused(server_factory, pki):
    """The server requires TLS 1.3 (rpc.h): a TLS 1.2-only client fails its
    handshake, and the server lives on."""
    srv = server_factory()
    ctx = ssl.create_default_context(cafile=pki.path("ca.pem"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    with pytest.raises((ssl.SSLError, OSError)):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw_sock:
            with ctx.wrap_socket(raw_sock, server_hostname="localhost") as s:
                s.sendall(h2raw.PREFACE)
                if h2raw.wait_eof(s, 3) is not None:
                    raise OSError("closed")
    assert_healthy(srv)
    srv.assert_clean_exit()

# ----------------------------------------------------- malformed gRPC calls


# docs/rpc.md "Statuses the server returns by itself", row by row: how to
# provoke it (open_stream arguments), then (HTTP status, grpc-status,
# grpc-message). Every row is a Trailers-Only response on a connection that
# stays up.
ECHO = h2raw.echo_request("x")
STATUS_ROWS = [
    ("method_get", dict(raw_body=h2raw.grpc_message(ECHO), method_="GET"),
     (405, 13, "gRPC requires method POST")),
    ("content_type", dict(msg=ECHO, content_type="text/plain"),
     (415, 13, "invalid gRPC request content-type")),
    ("grpc_encoding", dict(msg=ECHO, extra=[("grpc-encoding", "gzip")]),
     (200, 12, "grpc-encoding gzip is not supported")),
    ("timeout_malformed", dict(msg=ECHO, timeout="soon"),
     (200, 13, "malformed grpc-timeout")),
    ("timeout_nine_digits", dict(msg=ECHO, timeout="300000000n"),
     (200, 13, "malformed grpc-timeout")),
    ("timeout_zero", dict(msg=ECHO, timeout="0m"),
     (200, 4, "deadline exceeded")),
    ("unknown_method", dict(msg=ECHO, path="/anchor.interop.Echo/Missing"),
     (200, 12, "unknown method /anchor.interop.Echo/Missing")),
    ("bin_not_base64", dict(msg=ECHO, extra=[("x-b-bin", "!!!")]),
     (200, 13, "malformed binary metadata")),
    ("too_large", dict(raw_body=h2raw.grpc_message(b"", length=(4 << 20) + 1), end=False),
     (200, 8, "received message larger than max (4194304 bytes)")),
    ("compressed", dict(raw_body=h2raw.grpc_message(ECHO, compressed=1)),
     (200, 12, "compressed messages are not supported")),
    ("bad_flags", dict(raw_body=h2raw.grpc_message(ECHO, compressed=2)),
     (200, 13, "invalid message flags")),
    ("no_message", dict(),
     (200, 13, "unary request without a message")),
    ("two_messages", dict(raw_body=h2raw.grpc_message(ECHO) + h2raw.grpc_message(ECHO)),
     (200, 13, "too many request messages for a unary request")),
    ("truncated", dict(raw_body=h2raw.grpc_message(b"abc", length=10)),
     (200, 13, "request ended inside a message")),
    ("handler_no_reply", dict(msg=ECHO, path="/anchor.interop.Test/NoReply"),
     (200, 13, "handler finished a unary call without a response message")),
]


def _open_row(c, kw):
    kw = dict(kw)
    path = kw.pop("path", method("Echo"))
    verb = kw.pop("method_", None)
    if verb is None:
        return c.open_stream(path, **kw)
    # A request with another :method, built by hand.
    sid = c.next_sid
    c.next_sid += 2
    c.streams[sid] = h2raw.Stream(sid)
    hdrs = [(":method", verb) if k == ":method" else (k, v)
            for k, v in h2raw.request_headers(path)]
    c.send(h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS, sid, c.enc.encode(hdrs)) +
           h2raw.frame(h2raw.DATA, h2raw.END_STREAM, sid, kw["raw_body"]))
    return sid


@pytest.mark.parametrize("row", STATUS_ROWS, ids=[r[0] for r in STATUS_ROWS])
def test_documented_statuses(server_factory, row):
    name, kw, (http, status, message) = row
    srv = server_factory()
    c = raw(srv)
    c.pump(lambda c: c.server_settings, 5)
    sid = _open_row(c, kw)
    assert c.wait_ended([sid], 5), c.streams[sid].__dict__
    st = c.streams[sid]
    got = (st.http_status(), st.status(), dict(st.headers or []).get("grpc-message"))
    want = (http, status, message)  # printable ASCII: the same percent-encoded
    assert got == want, st.__dict__
    assert st.trailers is None and st.data == b"", "not Trailers-Only: %r" % st.__dict__
    after = c.open_stream(method("Echo"), h2raw.echo_request("after"))
    assert c.wait_ended([after], 5) and c.streams[after].status() == 0, "connection lost"
    c.close()
    srv.assert_clean_exit()


def test_early_response_resets_a_request_still_sending(server_factory):
    """The server answers (here UNIMPLEMENTED) while the client has not
    finished its request: Trailers-Only, then RST_STREAM(NO_ERROR) (RFC 9113
    8.1, docs/rpc.md)."""
    srv = server_factory()
    c = raw(srv)
    sid = c.open_stream("/anchor.interop.Echo/Missing", ECHO, end=False)
    assert c.wait_ended([sid], 5)
    assert c.pump(lambda c: c.streams[sid].rst is not None, 2), c.streams[sid].__dict__
    assert c.streams[sid].status() == cases.UNIMPLEMENTED
    assert c.streams[sid].rst == h2raw.NO_ERROR
    c.close()
    srv.assert_clean_exit()


def test_grpc_proto_content_type_is_accepted(server_factory):
    srv = server_factory()
    c = raw(srv)
    sids = [c.open_stream(method("Echo"), ECHO, content_type=ct)
            for ct in ("application/grpc+proto", "application/grpc;charset=utf-8")]
    assert c.wait_ended(sids, 5)
    assert [c.streams[s].status() for s in sids] == [0, 0]
    c.close()
    srv.assert_clean_exit()


def test_deadline_is_enforced_by_the_server(server_factory):
    srv = server_factory()
    c = raw(srv)
    t0 = time.monotonic()
    sid = c.open_stream(method("Echo"), h2raw.echo_request("slow", delay_ms=5000),
                        timeout="300m")
    assert c.wait_ended([sid], 4)
    assert c.streams[sid].status() == cases.DEADLINE_EXCEEDED, c.streams[sid].__dict__
    assert time.monotonic() - t0 < 2.5
    c.close()
    srv.assert_clean_exit()

# ------------------------------------------------------------ grpc-timeout


@pytest.mark.parametrize("timeout", ["300m", "300000u", "30000000n", "1S"])
def test_grpc_timeout_units_are_enforced_by_the_server(server_factory, timeout):
    """grpc-timeout in each unit (PROTOCOL-HTTP2: H M S m u n), from a client
    that enforces nothing itself: the server ends the call with
    DEADLINE_EXCEEDED on time."""
    srv = server_factory()
    c = raw(srv)
    t0 = time.monotonic()
    sid = c.open_stream(method("Echo"), h2raw.echo_request("slow", delay_ms=5000),
                        timeout=timeout)
    assert c.wait_ended([sid], 4), "no status within 4 s for grpc-timeout %s" % timeout
    took = time.monotonic() - t0
    assert c.streams[sid].status() == cases.DEADLINE_EXCEEDED, c.streams[sid].__dict__
    assert took < 2.5, took
    long = c.open_stream(method("Echo"), h2raw.echo_request("fast", delay_ms=100),
                         timeout="2M")
    assert c.wait_ended([long], 4) and c.streams[long].status() == 0
    c.close()
    srv.assert_clean_exit()

# ------------------------------------------------------- header encodings


def test_binary_headers_padded_unpadded_and_invalid(server_factory):
    """-bin values are base64 on the wire; gRPC requires accepting them with
    and without padding. An invalid one must not crash or leak: the call is
    refused or the header dropped."""
    from echo_pb import EchoRequest

    srv = server_factory()
    c = raw(srv)
    req = EchoRequest(echo_keys=["x-b-bin"]).SerializeToString()
    sids = {}
    for name, value in (("padded", "AP8Q4g=="), ("unpadded", "AP8Q4g"),
                        ("invalid", "!!not base64!!"), ("empty", "")):
        sids[name] = c.open_stream(method("Metadata"), req, extra=[("x-b-bin", value)])
    assert c.wait_ended(list(sids.values()), 5)
    for name in ("padded", "unpadded"):
        st = c.streams[sids[name]]
        assert st.status() == 0, (name, st.__dict__)
        assert dict(st.trailers or []).get("trailer-x-b-bin", "").rstrip("=") == "AP8Q4g", (
            name, st.trailers)
    assert c.streams[sids["empty"]].status() == 0
    inv = c.streams[sids["invalid"]]
    assert inv.status() is not None or inv.rst is not None, inv.__dict__
    c.close()
    assert_healthy(srv)
    srv.assert_clean_exit()


@pytest.mark.parametrize("timeout", ["99999999H", "99999999M", "99999999S", "99999999m"])
def test_huge_grpc_timeouts_do_not_overflow(server_factory, timeout):
    """The largest legal grpc-timeout values are far in the future, not an
    overflow into the past."""
    srv = server_factory()
    c = raw(srv)
    sid = c.open_stream(method("Echo"), h2raw.echo_request("x", delay_ms=200), timeout=timeout)
    assert c.wait_ended([sid], 5)
    assert c.streams[sid].status() == 0, c.streams[sid].__dict__
    c.close()
    srv.assert_clean_exit()
