"""Abuse of libanchor's gRPC server (interop_server) by clients that break the
rules on purpose, with hand-built HTTP/2 frames (h2raw.py).

Each test checks three things: the abuser gets the documented answer (a
gRPC status, RST_STREAM, GOAWAY, or the connection closed), the server keeps
serving everybody else (a normal grpcio call right after), and its memory
does not grow without bound (VmRSS). The server then must stop cleanly on
SIGTERM with no sanitizer report. The server runs with a small ASan
quarantine so that RSS reflects what it holds, not what ASan keeps.
"""

import random
import signal
import socket
import ssl
import time

import pytest

import cases
import h2raw
from echo_pb import method
from server_util import (MIB, assert_healthy, call_echo, raw, server_factory,  # noqa: F401
                         wait_connections, warm)

# ----------------------------------------------------------------- streams


def test_streams_beyond_the_limit_end_the_connection(server_factory):
    """A client that ACKed SETTINGS_MAX_CONCURRENT_STREAMS (8 here) and opens
    40 streams anyway: nghttp2 ends the connection with GOAWAY
    PROTOCOL_ERROR (rpc.h), no stream beyond the limit is served, the calls
    cut short are cancelled cleanly, and the server serves others."""
    srv = server_factory("--max-streams", "8")
    c = raw(srv)
    assert c.pump(lambda c: h2raw.MAX_CONCURRENT_STREAMS in c.server_settings, 5)
    assert c.server_settings[h2raw.MAX_CONCURRENT_STREAMS] == 8
    c.pump(timeout=0.3)  # our SETTINGS ACK is out and read by the server
    sids = []
    try:
        for i in range(40):
            sids.append(c.open_stream(method("Echo"), h2raw.echo_request("s%d" % i,
                                                                         delay_ms=1500)))
    except OSError:
        pass  # the server closed the connection on us
    assert c.wait_ended(sids, 15), "streams still open"
    served = [s for s in sids if c.streams[s].status() is not None]
    assert all(s <= sids[7] for s in served), "a stream beyond the limit was served: %r" % [
        (s, c.streams[s].status()) for s in served]
    assert c.goaway is not None and c.goaway[1] == h2raw.PROTOCOL_ERROR, c.goaway
    assert c.goaway[0] <= sids[8], c.goaway
    assert c.wait_closed(5)
    c.close()
    assert_healthy(srv)
    assert wait_connections(srv, 1) == 1
    srv.assert_clean_exit()


def test_streams_beyond_the_limit_before_settings_ack_are_refused(server_factory):
    """The same before the client ACKed the server's SETTINGS: the streams
    beyond the limit get RST_STREAM(REFUSED_STREAM) (rpc.h), the first 8 are
    served, and the connection goes on."""
    srv = server_factory("--max-streams", "8")
    c = h2raw.H2Conn(unix=srv.unix)
    c.auto_settings_ack = False
    c.start()
    sids = [c.open_stream(method("Echo"), h2raw.echo_request("p%d" % i, delay_ms=300))
            for i in range(12)]
    assert c.wait_ended(sids, 10), "streams still open"
    assert c.goaway is None and not c.eof, c.goaway
    assert [c.streams[s].status() for s in sids[:8]] == [0] * 8
    for s in sids[8:]:
        assert c.streams[s].rst == h2raw.REFUSED_STREAM, (s, c.streams[s].__dict__)
    c.send(h2raw.settings(ack=True))
    s = c.open_stream(method("Echo"), h2raw.echo_request("again"))
    assert c.wait_ended([s], 5) and c.streams[s].status() == 0
    c.close()
    assert_healthy(srv)
    srv.assert_clean_exit()


def test_rapid_reset_does_not_exhaust_the_server(server_factory):
    """CVE-2023-44487 style: open a stream and reset it at once, thousands of
    times. The server may GOAWAY the abuser (ENHANCE_YOUR_CALM); it must not
    pile up work or memory, and keeps serving others."""
    srv = server_factory()
    before = warm(srv)
    c = raw(srv)
    c.pump(lambda c: c.server_settings, 5)
    req = h2raw.echo_request("r", delay_ms=2000)
    t0 = time.monotonic()
    sent = 0
    try:
        for batch in range(50):
            out = b""
            for _ in range(100):
                sid = c.next_sid
                c.next_sid += 2
                hdrs = h2raw.request_headers(method("Echo"))
                out += h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS, sid, c.enc.encode(hdrs))
                out += h2raw.frame(h2raw.DATA, h2raw.END_STREAM, sid, h2raw.grpc_message(req))
                out += h2raw.rst_stream(sid)
            c.send(out)
            sent += 100
            c.pump(timeout=0.01)
            if c.eof:
                break
    except OSError:
        pass  # the server closed the connection on the abuser: allowed
    c.pump(timeout=1.0)
    c.close()
    assert time.monotonic() - t0 < 30
    assert sent >= 100
    assert_healthy(srv)
    assert wait_connections(srv, 1) == 1
    grown = srv.rss_kib() - before
    assert grown < 48 * 1024, "RSS grew by %d KiB after %d reset streams" % (grown, sent)
    srv.assert_clean_exit()


# ---------------------------------------------------------------- big sizes


def test_frame_announcing_100mib_closes_the_connection(server_factory):
    """A DATA frame header whose length is 100 MiB, far above
    SETTINGS_MAX_FRAME_SIZE: a connection error (RFC 9113 4.2), GOAWAY with
    FRAME_SIZE_ERROR, and nothing of it buffered."""
    srv = server_factory()
    before = warm(srv)
    c = raw(srv)
    c.pump(lambda c: c.server_settings, 5)
    sid = c.open_stream(method("Echo"), end=False)
    c.send(h2raw.frame(h2raw.DATA, 0, sid, b"\0" * 1024, length=100 * MIB))
    try:
        for _ in range(64):  # keep feeding: the server must not wait for it all
            c.send(b"\0" * 16384)
    except OSError:
        pass
    assert c.wait_closed(5), "connection not closed"
    if c.goaway is not None:
        assert c.goaway[1] == h2raw.FRAME_SIZE_ERROR, c.goaway
    c.close()
    assert_healthy(srv)
    assert srv.rss_kib() - before < 32 * 1024
    srv.assert_clean_exit()


def test_grpc_message_announcing_100mib_is_resource_exhausted(server_factory):
    """A gRPC message prefix that announces 100 MiB (limit 4 MiB): the call
    ends with RESOURCE_EXHAUSTED before the body is buffered, the stream is
    closed, and the same connection still serves other calls."""
    srv = server_factory()
    before = warm(srv)
    c = raw(srv)
    c.pump(lambda c: c.server_settings, 5)
    sid = c.open_stream(method("Echo"), end=False,
                        raw_body=h2raw.grpc_message(b"\0" * 4000, length=100 * MIB))
    assert c.wait_ended([sid], 5), "no answer to a 100 MiB message"
    st = c.streams[sid]
    assert st.status() == cases.RESOURCE_EXHAUSTED, (st.headers, st.trailers, st.rst)
    assert st.messages() == []
    s2 = c.open_stream(method("Echo"), h2raw.echo_request("after"))
    assert c.wait_ended([s2], 5) and c.streams[s2].status() == 0, c.streams[s2].__dict__
    c.close()
    assert_healthy(srv)
    assert srv.rss_kib() - before < 32 * 1024
    srv.assert_clean_exit()


def test_grpcio_message_over_the_limit_is_resource_exhausted(server_factory):
    """The same limit as a real client meets it: grpcio sends 5 MiB (limit
    4 MiB), then 2 KiB to a server limited to 1 KiB."""
    srv = server_factory()
    r = call_echo(srv, payload_len=5 * MIB, timeout=20)
    assert r["code"] == cases.RESOURCE_EXHAUSTED, r
    assert call_echo(srv, payload_len=4 * MIB - 64, timeout=20)["code"] == 0
    small = server_factory("--max-recv", "1024")
    assert call_echo(small, payload_len=2048)["code"] == cases.RESOURCE_EXHAUSTED
    # The limit is inclusive: an EchoRequest with only a payload of 1021 bytes
    # is 1 + 2 + 1021 = 1024 bytes; one more byte is over.
    assert call_echo(small, text="", payload_len=1021)["code"] == 0
    assert call_echo(small, text="", payload_len=1022)["code"] == cases.RESOURCE_EXHAUSTED
    assert_healthy(srv)
    srv.assert_clean_exit()
    small.assert_clean_exit()


def test_huge_header_block_is_refused(server_factory):
    """64 KiB of request headers (limit 16 KiB) in HEADERS + CONTINUATION:
    refused with RESOURCE_EXHAUSTED, and the connection serves on."""
    srv = server_factory()
    c = raw(srv)
    c.pump(lambda c: c.server_settings, 5)
    sid = c.next_sid
    c.next_sid += 2
    c.streams[sid] = h2raw.Stream(sid)
    block = c.enc.encode(h2raw.request_headers(method("Echo"),
                                               extra=[("x-big", "a" * (64 << 10))]))
    chunks = [block[i:i + 16000] for i in range(0, len(block), 16000)]
    out = h2raw.frame(h2raw.HEADERS, 0, sid, chunks[0])
    for i, ch in enumerate(chunks[1:]):
        last = i == len(chunks) - 2
        out += h2raw.frame(h2raw.CONTINUATION, h2raw.END_HEADERS if last else 0, sid, ch)
    out += h2raw.frame(h2raw.DATA, h2raw.END_STREAM, sid,
                       h2raw.grpc_message(h2raw.echo_request("x")))
    try:
        c.send(out)
    except OSError:
        pass
    c.pump(lambda c: c.streams[sid].ended or c.eof, 5)
    st = c.streams[sid]
    # rpc.h: Trailers-Only RESOURCE_EXHAUSTED "request header list too large".
    assert st.status() == cases.RESOURCE_EXHAUSTED, (st.headers, st.trailers, st.rst, c.goaway)
    assert st.trailers is None and st.data == b""
    s2 = c.open_stream(method("Echo"), h2raw.echo_request("after"))
    assert c.wait_ended([s2], 5) and c.streams[s2].status() == 0
    c.close()
    assert_healthy(srv)
    srv.assert_clean_exit()


# ------------------------------------------------------------ bad preface


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
    bytes(random.Random(7).getrandbits(8) for _ in range(4096)),
], ids=["http1", "almost-preface", "random"])
def test_garbage_instead_of_preface_is_closed(server_factory, garbage):
    srv = server_factory()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(srv.unix)
    try:
        s.sendall(garbage)
    except OSError:
        pass
    took = h2raw.wait_eof(s, 5)
    s.close()
    assert took is not None, "connection left open after garbage"
    assert_healthy(srv)
    assert wait_connections(srv, 1) == 1
    srv.assert_clean_exit()


def test_garbage_instead_of_tls_client_hello_is_closed(server_factory):
    srv = server_factory()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x16\x03\x01\xff\xff" + b"\0" * 512)
    took = h2raw.wait_eof(s, 5)
    s.close()
    assert took is not None
    assert_healthy(srv)
    srv.assert_clean_exit()


# -------------------------------------------------------------- slowloris


def test_silent_connections_are_closed_after_the_handshake_timeout(server_factory, pki):
    """Connect and say nothing, at each step: the unix socket, TCP before
    the TLS ClientHello, after the TLS handshake, after the HTTP/2 preface.
    Every one is closed once the handshake timeout (1 s here) passed, and the
    server answers others meanwhile."""
    srv = server_factory("--handshake-timeout-ms", "1000")
    silent = []
    t = time.monotonic()
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.connect(srv.unix)
    silent.append(("unix", u, t))
    t = time.monotonic()
    silent.append(("tcp-no-hello", socket.create_connection(("127.0.0.1", srv.port), timeout=5),
                   t))
    ctx = ssl.create_default_context(cafile=pki.path("ca.pem"))
    ctx.set_alpn_protocols(["h2"])
    t = time.monotonic()
    tl = ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.port), timeout=5),
                         server_hostname="localhost")
    silent.append(("tls-no-preface", tl, t))
    t = time.monotonic()
    p = h2raw.H2Conn(unix=srv.unix)
    p.start()
    silent.append(("preface-no-request", p.sock, t))
    assert_healthy(srv)  # served while the silent ones wait
    for name, s, connected in silent:
        assert h2raw.wait_eof(s, 8) is not None, "%s still open" % name
        # The server's clock starts at accept, after `connected`.
        lived = time.monotonic() - connected
        assert lived > 0.9, "%s closed too early (%.2fs)" % (name, lived)
        s.close()
    assert wait_connections(srv, 1) == 1
    srv.assert_clean_exit()


def test_idle_connection_gets_goaway(server_factory):
    srv = server_factory("--idle-timeout-ms", "1000")
    c = raw(srv)
    sid = c.open_stream(method("Echo"), h2raw.echo_request("x"))
    assert c.wait_ended([sid], 5) and c.streams[sid].status() == 0
    t0 = time.monotonic()
    assert c.wait_closed(8), "idle connection left open"
    assert time.monotonic() - t0 > 0.3  # the idle clock started a moment before t0
    assert c.goaway is not None and c.goaway[1] == h2raw.NO_ERROR, c.goaway
    c.close()
    assert_healthy(srv)
    srv.assert_clean_exit()


def test_burst_of_connections_waits_in_the_backlog(server_factory):
    """1000 connections arrive while the server is busy (stopped with
    SIGSTOP): the kernel must queue them all (listen backlog SOMAXCONN, as the
    module intends) rather than refuse them; then the server takes and
    closes them when their clients leave, and serves normally."""
    srv = server_factory()
    srv.p.send_signal(signal.SIGSTOP)
    conns, refused = [], 0
    try:
        for _ in range(1000):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(srv.unix)
                conns.append(s)
            except BlockingIOError:
                refused += 1
                s.close()
    finally:
        srv.p.send_signal(signal.SIGCONT)
    for s in conns:
        s.close()
    assert refused == 0, "%d of 1000 connections refused: listen backlog too small" % refused
    assert_healthy(srv)
    assert wait_connections(srv, 1) == 1
    srv.assert_clean_exit()


def test_excess_connections_are_closed(server_factory):
    srv = server_factory("--max-connections", "4")
    conns = []
    for _ in range(10):
        c = h2raw.H2Conn(unix=srv.unix)
        try:
            c.start()
        except OSError:
            pass
        conns.append(c)
    time.sleep(0.5)
    closed = sum(1 for c in conns if c.pump(lambda c: c.eof, 0.3))
    assert closed >= 6, "only %d of 10 connections closed with a limit of 4" % closed
    for c in conns:
        c.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if call_echo(srv)["code"] == 0:
            break
        time.sleep(0.1)
    assert_healthy(srv)
    srv.assert_clean_exit()


# -------------------------------------------------------- a reader that stops


def test_client_that_stops_reading_does_not_grow_the_server(server_factory):
    """The client opens huge flow-control windows, asks for ~1.6 GB of
    pushes and never reads. The server must stop producing (back-pressure)
    instead of buffering, serve others meanwhile, and drop the call when the
    client goes away."""
    srv = server_factory()
    before = warm(srv)
    c = h2raw.H2Conn(unix=srv.unix)
    c.auto_window = False
    c.start([(h2raw.INITIAL_WINDOW_SIZE, h2raw.MAX_WINDOW)])
    c.send(h2raw.window_update(0, h2raw.MAX_WINDOW - 65535))
    c.open_stream(method("Count"), h2raw.echo_request("flood", count=100000,
                                                      payload=b"\xab" * 16000))
    time.sleep(2.0)
    mid = srv.rss_kib()
    assert_healthy(srv)
    time.sleep(2.0)
    late = srv.rss_kib()
    assert late - before < 64 * 1024, "RSS grew by %d KiB" % (late - before)
    assert late - mid < 16 * 1024, "RSS still growing: %d -> %d KiB" % (mid, late)
    c.close()
    assert wait_connections(srv, 1) == 1
    assert_healthy(srv)
    srv.assert_clean_exit()


# ---------------------------------------------------------------- shutdown


def test_graceful_shutdown_lets_calls_in_flight_finish(server_factory):
    """SIGTERM while a server-streaming call is pushing: the call completes
    with all its messages and OK, then the server exits 0."""
    srv = server_factory()
    c = raw(srv)
    sid = c.open_stream(method("Count"), h2raw.echo_request("g", count=6, delay_ms=150))
    c.pump(lambda c: len(c.streams[sid].messages()) >= 1, 5)
    srv.p.send_signal(15)
    assert c.wait_ended([sid], 10)
    st = c.streams[sid]
    assert st.status() == 0, st.__dict__
    assert len(st.messages()) == 6
    c.pump(lambda c: c.eof, 5)
    assert c.goaway is not None, "no GOAWAY on shutdown"
    c.close()
    srv.assert_clean_exit_by_itself()


# ---------------------------------------------------------- cancel, floods


def test_cancelled_streams_free_their_calls(server_factory):
    """The client resets server-streaming calls mid-way (RST_STREAM CANCEL):
    the server stops pushing, and nothing is left behind (ASan's leak check
    at exit)."""
    srv = server_factory()
    c = raw(srv)
    sids = [c.open_stream(method("Count"), h2raw.echo_request("c", count=1000, delay_ms=10))
            for _ in range(5)]
    assert c.pump(lambda c: all(len(c.streams[s].messages()) >= 3 for s in sids), 5)
    c.send(b"".join(h2raw.rst_stream(s) for s in sids))
    c.pump(timeout=0.5)
    got = {s: len(c.streams[s].messages()) for s in sids}
    c.pump(timeout=0.5)
    assert {s: len(c.streams[s].messages()) for s in sids} == got, "pushes after RST_STREAM"
    s = c.open_stream(method("Echo"), h2raw.echo_request("after"))
    assert c.wait_ended([s], 5) and c.streams[s].status() == 0
    c.close()
    assert wait_connections(srv, 1) == 1
    srv.assert_clean_exit()


@pytest.mark.parametrize("flood", ["ping", "settings", "window_update"])
def test_control_frame_flood_without_reading(server_factory, flood):
    """100k PING (or SETTINGS, or WINDOW_UPDATE) frames from a client that
    never reads the acknowledgements: the server must not queue them without
    bound (it may close the connection, nghttp2 does with ENHANCE_YOUR_CALM),
    and serves others."""
    srv = server_factory()
    before = warm(srv)
    c = h2raw.H2Conn(unix=srv.unix)
    c.auto_window = False
    c.start()
    if flood == "ping":
        one = h2raw.frame(h2raw.PING, 0, 0, b"12345678")
    elif flood == "settings":
        one = h2raw.settings([(h2raw.INITIAL_WINDOW_SIZE, 65535)])
    else:
        one = h2raw.window_update(0, 1)
    batch = one * 1000
    c.sock.settimeout(2)
    try:
        for _ in range(100):
            c.send(batch)
    except OSError:
        pass  # closed on us, or our send buffer is full because the server stopped reading
    assert_healthy(srv)
    grown = srv.rss_kib() - before
    assert grown < 32 * 1024, "RSS grew by %d KiB" % grown
    c.close()
    assert wait_connections(srv, 1) == 1
    srv.assert_clean_exit()


def test_continuation_flood_is_bounded(server_factory):
    """HEADERS then CONTINUATION frames that never END_HEADERS (the 2024
    CONTINUATION flood): the server must not keep the header block, and must
    close the connection or keep its memory flat."""
    srv = server_factory()
    before = warm(srv)
    c = raw(srv)
    c.pump(lambda c: c.server_settings, 5)
    sid = c.next_sid
    block = c.enc.encode(h2raw.request_headers(method("Echo")))
    junk = b"".join(c.enc.encode([("x-junk-%d" % i, "v" * 200)]) for i in range(50))
    c.sock.settimeout(2)
    sent = 0
    try:
        c.send(h2raw.frame(h2raw.HEADERS, 0, sid, block))
        while sent < 20 * MIB:
            c.send(h2raw.frame(h2raw.CONTINUATION, 0, sid, junk) * 16)
            sent += 16 * len(junk)
    except OSError:
        pass
    assert_healthy(srv)
    grown = srv.rss_kib() - before
    assert grown < 32 * 1024, "RSS grew by %d KiB after %d bytes of CONTINUATION" % (grown, sent)
    c.close()
    assert wait_connections(srv, 1) == 1
    srv.assert_clean_exit()


def test_connection_churn_leaves_nothing_behind(server_factory, pki):
    """300 connections that come and go half-way (after the preface, in the
    middle of a TLS handshake, mid-request): the count of connections comes
    back to one and memory stays flat."""
    srv = server_factory()
    before = warm(srv)
    for i in range(300):
        kind = i % 3
        if kind == 0:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(srv.unix)
            s.sendall(h2raw.PREFACE[: i % len(h2raw.PREFACE)])
            s.close()
        elif kind == 1:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"\x16\x03\x01\x00\x05hello"[: i % 10])
            s.close()
        else:
            c = raw(srv)
            c.open_stream(method("Count"), h2raw.echo_request("x", count=50, delay_ms=5))
            c.close()
    assert_healthy(srv)
    assert wait_connections(srv, 1) == 1
    grown = srv.rss_kib() - before
    assert grown < 16 * 1024, "RSS grew by %d KiB" % grown
    srv.assert_clean_exit()


def test_shutdown_grace_cancels_calls_that_do_not_end(server_factory):
    """SIGTERM with a call that would run for 10 s and a grace of 500 ms:
    the listeners close at once (no new connection), a new stream on the old
    connection is not served, the long call is cut after the grace, and the
    server exits 0."""
    srv = server_factory("--grace-ms", "500")
    c = raw(srv)
    sid = c.open_stream(method("Count"), h2raw.echo_request("long", count=100, delay_ms=100))
    assert c.pump(lambda c: len(c.streams[sid].messages()) >= 1, 5)
    t0 = time.monotonic()
    srv.p.send_signal(signal.SIGTERM)
    assert c.pump(lambda c: c.goaway is not None, 3), "no GOAWAY"
    late = c.open_stream(method("Echo"), h2raw.echo_request("late"))
    time.sleep(0.2)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with pytest.raises(OSError):
        s.connect(srv.unix)
    s.close()
    assert c.wait_ended([sid], 5), "long call not ended after the grace"
    took = time.monotonic() - t0
    assert 0.3 < took < 3.0, took
    st = c.streams[sid]
    # Ended with a status or a reset, or the connection closed under it
    # (grpc-go's Stop does the same): a client sees UNAVAILABLE either way.
    assert st.status() == cases.UNAVAILABLE or st.rst is not None or c.eof, st.__dict__
    assert c.streams[late].status() is None, "a stream opened after GOAWAY was served"
    c.close()
    srv.assert_clean_exit_by_itself(10)
