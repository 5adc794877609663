"""Interop with node's @grpc/grpc-js (a pure JavaScript HTTP/2 + gRPC stack,
pinned in package-lock.json here), both directions, over a unix socket and
over TLS 1.3 with client certificates.

  grpc-js client (node_peer.js client) -> libanchor server (interop_server)
  libanchor client (interop_client) -> grpc-js server (node_peer.js server)
"""

import os

import pytest

import cases
from conftest import HERE, AnchorServer, Proc, run_anchor_client, run_node_client

TRANSPORTS = ["unix", "tls"]
NAMES = [c["name"] for c in cases.CASES]


# ------------------------------------------- grpc-js client -> anchor server


@pytest.fixture(scope="module", params=TRANSPORTS)
def node_client_results(request, node, pki, module_sockdir):
    d = os.path.join(module_sockdir, "from-node-" + request.param)
    os.mkdir(d)
    tls = request.param == "tls"
    srv = AnchorServer(d, pki, tls=tls, unix=not tls)
    try:
        if tls:
            out = run_node_client(node, cases.CASES, d, "127.0.0.1:%d" % srv.port, pki=pki)
        else:
            out = run_node_client(node, cases.CASES, d, "unix:" + srv.unix)
        srv.assert_clean_exit()
    finally:
        srv.close()
    return out


@pytest.mark.parametrize("name", NAMES)
def test_grpcjs_client_to_anchor_server(node_client_results, name):
    results, rc, err = node_client_results
    assert name in results, "no result for %s (exit %s): %s" % (name, rc, err[-3000:])
    cases.check(results[name])


# ------------------------------------------- anchor client -> grpc-js server


@pytest.fixture(scope="module", params=TRANSPORTS)
def anchor_client_results(request, node, pki, module_sockdir):
    d = os.path.join(module_sockdir, "to-node-" + request.param)
    os.mkdir(d)
    argv = [node, os.path.join(HERE, "node_peer.js"), "server"]
    if request.param == "unix":
        path = os.path.join(d, "node.sock")
        argv += ["--unix", path]
    else:
        argv += ["--port", "0", "--cert", pki.path("server.pem"), "--key",
                 pki.path("server.key"), "--ca", pki.path("ca.pem")]
    srv = Proc(argv, "node_server")
    try:
        if request.param == "unix":
            out = run_anchor_client(cases.CASES, d, unix=path)
        else:
            out = run_anchor_client(cases.CASES, d, port=srv.info["port"], pki=pki)
        assert srv.stop() == 0, srv.stderr()
    finally:
        srv.close()
    return out


@pytest.mark.parametrize("name", NAMES)
def test_anchor_client_to_grpcjs_server(anchor_client_results, name):
    results, rc, err = anchor_client_results
    assert name in results, "no result for %s (exit %s): %s" % (name, rc, err[-3000:])
    cases.check(results[name])


def test_anchor_client_exits_clean_after_grpcjs(anchor_client_results):
    results, rc, err = anchor_client_results
    assert rc == 0, err[-3000:]
    assert not any(m in err for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:")), err
