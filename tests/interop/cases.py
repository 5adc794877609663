"""The interop cases: one table, run through every client against every server.

A case is a JSON-able dict that each client (python3-grpcio in
py_peer.run_case, grpc-js in node_peer.js, libanchor's interop_client) turns
into one call and reports as a result dict:

    {"name", "code", "message", "replies": [{"text", "index", "metadata",
     "payload_len", "payload_sha256"}], "initial_metadata": [[k, v]],
     "trailing_metadata": [[k, v]], "elapsed_ms"}

Binary (-bin) metadata values travel as hex in cases and results. check()
holds the expectations, so every pair of peers is held to the same ones.
"""

import hashlib

from echo_pb import method

OK, CANCELLED, INVALID_ARGUMENT, DEADLINE_EXCEEDED = 0, 1, 3, 4
NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED = 5, 7, 8
UNIMPLEMENTED, INTERNAL, UNAVAILABLE, UNAUTHENTICATED = 12, 13, 14, 16

# Status messages that must come back byte for byte: non-ASCII, a bare '%',
# text that looks percent-encoded already ("%41" must not become "A"), and
# characters outside the printable ASCII range that grpc-message must encode.
MSG_NON_ASCII = "refusé: 100% sûr — 日本語 ✓ 🔒 %41 %"
MSG_PERCENT = "%%25 50%% off, %zz and a trailing %"
MSG_CONTROL = "line one\nline two\ttabbed \"quoted\" \\ back"


def payload(n):
    return bytes(i % 251 for i in range(n))


def sha256_hex(n):
    return hashlib.sha256(payload(n)).hexdigest()


CASES = [
    {"name": "unary", "kind": "unary", "method": method("Echo"),
     "requests": [{"text": "hello, wörld", "payload_len": 100}]},
    {"name": "unary_empty", "kind": "unary", "method": method("Echo"),
     "requests": [{}]},
    {"name": "unary_1mib", "kind": "unary", "method": method("Echo"),
     "requests": [{"text": "big", "payload_len": 1 << 20}]},
    {"name": "server_stream", "kind": "server_stream", "method": method("Count"),
     "requests": [{"text": "push", "count": 5, "delay_ms": 20}]},
    {"name": "server_stream_burst", "kind": "server_stream", "method": method("Count"),
     "requests": [{"text": "burst", "count": 50, "payload_len": 1000}]},
    {"name": "client_stream", "kind": "client_stream", "method": method("Collect"),
     "requests": [{"text": "a"}, {"text": "b"}, {"text": "c"}]},
    # 10 MB up in one call: the server's receive windows must reopen.
    {"name": "client_stream_bulk", "kind": "client_stream", "method": method("Collect"),
     "requests": [{"text": "m%d" % i, "payload_len": 200000} for i in range(50)]},
    # 5 MB down in one call: the client's windows, the server's send queue.
    {"name": "server_stream_large", "kind": "server_stream", "method": method("Count"),
     "requests": [{"text": "big", "count": 5, "payload_len": 1 << 20}]},
    {"name": "bidi", "kind": "bidi", "method": method("Chat"),
     "requests": [{"text": "one"}, {"text": "two"}, {"text": "three"}, {"text": "four"}]},
    # All requests at once, then half-close; the replies may interleave.
    {"name": "bidi_burst", "kind": "bidi_burst", "method": method("Chat"),
     "requests": [{"text": "b%d" % i} for i in range(100)]},
    {"name": "metadata", "kind": "unary", "method": method("Metadata"),
     "metadata": [["workload.spiffe.io", "true"], ["x-anchor-trace", "abc 123"],
                  ["x-anchor-blob-bin", "00ff10e2"]],
     "requests": [{"echo_keys": ["workload.spiffe.io", "x-anchor-trace",
                                 "x-anchor-blob-bin", "x-not-sent"]}]},
    {"name": "metadata_repeated", "kind": "unary", "method": method("Metadata"),
     "metadata": [["x-anchor-multi", "one"], ["x-anchor-multi", "two"],
                  ["x-anchor-multi-bin", "01"], ["x-anchor-multi-bin", "0203"]],
     "requests": [{"echo_keys": ["x-anchor-multi", "x-anchor-multi-bin"]}]},
    {"name": "deadline_unary", "kind": "unary", "method": method("Echo"),
     "timeout_ms": 300, "requests": [{"text": "slow", "delay_ms": 3000}]},
    {"name": "deadline_stream", "kind": "server_stream", "method": method("Count"),
     "timeout_ms": 500, "requests": [{"text": "slow", "count": 100, "delay_ms": 50}]},
    {"name": "status_non_ascii", "kind": "unary", "method": method("Fail"),
     "requests": [{"status": PERMISSION_DENIED, "status_message": MSG_NON_ASCII}]},
    {"name": "status_percent", "kind": "unary", "method": method("Fail"),
     "requests": [{"status": INVALID_ARGUMENT, "status_message": MSG_PERCENT}]},
    {"name": "status_control", "kind": "unary", "method": method("Fail"),
     "requests": [{"status": NOT_FOUND, "status_message": MSG_CONTROL}]},
    {"name": "unimplemented_method", "kind": "unary",
     "method": "/anchor.interop.Echo/NoSuchMethod", "requests": [{}]},
    {"name": "unimplemented_service", "kind": "unary",
     "method": "/anchor.interop.NoSuchService/Echo", "requests": [{}]},
]

BY_NAME = {c["name"]: c for c in CASES}


def _md(pairs, key):
    return [v for k, v in pairs if k == key]


def check(result):
    """Asserts that a client's result for its case is what the gRPC spec and
    the Echo service promise. Raises AssertionError with the whole result."""
    name = result["name"]
    r = result
    ctx = "case %s: %r" % (name, {k: v for k, v in r.items() if k != "replies"} | {
        "replies": r.get("replies", [])[:6]})
    reps = r.get("replies", [])
    code = r.get("code")
    if name == "unary":
        assert code == OK, ctx
        assert [(x["text"], x["payload_len"], x["payload_sha256"]) for x in reps] == [
            ("hello, wörld", 100, sha256_hex(100))], ctx
    elif name == "unary_empty":
        assert code == OK and len(reps) == 1 and reps[0]["text"] == "", ctx
        assert reps[0]["payload_len"] == 0, ctx
    elif name == "unary_1mib":
        assert code == OK, ctx
        assert [(x["payload_len"], x["payload_sha256"]) for x in reps] == [
            (1 << 20, sha256_hex(1 << 20))], ctx
    elif name == "server_stream":
        assert code == OK, ctx
        assert [(x["text"], x["index"]) for x in reps] == [
            ("push-%d" % i, i) for i in range(5)], ctx
    elif name == "server_stream_burst":
        assert code == OK, ctx
        assert [(x["text"], x["index"], x["payload_sha256"]) for x in reps] == [
            ("burst-%d" % i, i, sha256_hex(1000)) for i in range(50)], ctx
    elif name == "client_stream":
        assert code == OK, ctx
        assert [(x["text"], x["index"]) for x in reps] == [("a,b,c", 3)], ctx
    elif name == "client_stream_bulk":
        assert code == OK, ctx
        assert [(x["text"], x["index"]) for x in reps] == [
            (",".join("m%d" % i for i in range(50)), 50)], ctx
    elif name == "server_stream_large":
        assert code == OK, ctx
        assert [(x["text"], x["payload_sha256"]) for x in reps] == [
            ("big-%d" % i, sha256_hex(1 << 20)) for i in range(5)], ctx
    elif name == "bidi_burst":
        assert code == OK, ctx
        assert [(x["text"], x["index"]) for x in reps] == [
            ("b%d" % i, i) for i in range(100)], ctx
    elif name == "bidi":
        assert code == OK, ctx
        assert [(x["text"], x["index"]) for x in reps] == [
            ("one", 0), ("two", 1), ("three", 2), ("four", 3)], ctx
    elif name == "metadata":
        assert code == OK, ctx
        assert len(reps) == 1, ctx
        want = [["workload.spiffe.io", "true"], ["x-anchor-trace", "abc 123"],
                ["x-anchor-blob-bin", "00ff10e2"]]
        assert sorted(map(list, reps[0]["metadata"])) == sorted(want), ctx
        for k, v in want:
            assert _md(r["initial_metadata"], k) == [v], ctx
            assert _md(r["trailing_metadata"], "trailer-" + k) == [v], ctx
        assert not _md(r["initial_metadata"], "x-not-sent"), ctx
    elif name == "metadata_repeated":
        assert code == OK, ctx
        # Repeated text headers may be merged into one "a, b" value (RFC 9110
        # 5.3; grpc-js does); -bin values stay separate.
        def joined(pairs, key):
            return ",".join(v for k, v in pairs if k == key).replace(", ", ",")

        echoed = [tuple(p) for p in reps[0]["metadata"]]
        for pairs, prefix in ((echoed, ""), (r["initial_metadata"], ""),
                              (r["trailing_metadata"], "trailer-")):
            assert joined(pairs, prefix + "x-anchor-multi") == "one,two", ctx
            assert sorted(v for k, v in pairs if k == prefix + "x-anchor-multi-bin") == [
                "01", "0203"], ctx
    elif name == "deadline_unary":
        assert code == DEADLINE_EXCEEDED, ctx
        assert reps == [], ctx
        assert r["elapsed_ms"] < 2500, ctx
    elif name == "deadline_stream":
        assert code == DEADLINE_EXCEEDED, ctx
        assert 0 < len(reps) < 100, ctx
        assert r["elapsed_ms"] < 3000, ctx
    elif name == "status_non_ascii":
        assert (code, r["message"]) == (PERMISSION_DENIED, MSG_NON_ASCII), ctx
        assert reps == [], ctx
    elif name == "status_percent":
        assert (code, r["message"]) == (INVALID_ARGUMENT, MSG_PERCENT), ctx
    elif name == "status_control":
        assert (code, r["message"]) == (NOT_FOUND, MSG_CONTROL), ctx
    elif name in ("unimplemented_method", "unimplemented_service"):
        assert code == UNIMPLEMENTED, ctx
        assert reps == [], ctx
    else:
        raise AssertionError("no expectation for case " + name)
