"""Helpers of the server tests (test_abuse.py, test_protocol.py): a factory
of interop_server processes with small ASan quarantine, a normal grpcio call
to check that a server still serves, its connection count, raw connections.
"""

import os
import time

import pytest

import h2raw
import py_peer
from conftest import AnchorServer
from echo_pb import method

ASAN_SMALL = {"ASAN_OPTIONS": "detect_leaks=1:quarantine_size_mb=4:malloc_context_size=5"}
MIB = 1 << 20


@pytest.fixture
def server_factory(sockdir, pki):
    """Starts interop_server (unix socket + TLS without client certificates)
    with extra options; each is stopped at the end of the test."""
    started = []

    def start(*extra):
        d = os.path.join(sockdir, "s%d" % len(started))
        os.mkdir(d)
        s = AnchorServer(d, pki, tls=True, mtls=False, unix=True, extra=extra, env=ASAN_SMALL)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


def call_echo(srv, text="ping", timeout=5.0, payload_len=0):
    """A normal unary call from grpcio on a new connection; returns the code."""
    ch = py_peer.channel("unix:" + srv.unix)
    try:
        r = py_peer.run_case(ch, {"name": "health", "kind": "unary", "method": method("Echo"),
                                  "timeout_ms": int(timeout * 1000),
                                  "requests": [{"text": text, "payload_len": payload_len}]})
    finally:
        ch.close()
    return r


def assert_healthy(srv):
    assert srv.alive(), srv.stderr()
    r = call_echo(srv)
    assert r["code"] == 0 and r["replies"][0]["text"] == "ping", r


def connections(srv):
    """The server's count of open connections, as its Peer method reports it
    (the connection asking included)."""
    ch = py_peer.channel("unix:" + srv.unix)
    try:
        r = py_peer.run_case(ch, {"name": "peer", "kind": "unary", "method": method("Peer"),
                                  "timeout_ms": 5000, "requests": [{}]})
    finally:
        ch.close()
    assert r["code"] == 0, r
    return int(dict(r["replies"][0]["metadata"])["connections"])


def wait_connections(srv, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    n = connections(srv)
    while n > want and time.monotonic() < deadline:
        time.sleep(0.1)
        n = connections(srv)
    return n


def warm(srv):
    """A few normal calls so that RSS is measured after warm-up."""
    for _ in range(3):
        assert call_echo(srv, payload_len=64 << 10)["code"] == 0
    return srv.rss_kib()


def raw(srv, **kw):
    c = h2raw.H2Conn(unix=srv.unix, **kw)
    c.start()
    return c
