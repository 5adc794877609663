"""python3-grpcio peer for anchor's interop tests.

serve() runs the Echo service (proto/interop_echo.proto) on grpcio's C core,
over a unix socket or TLS on 127.0.0.1, through generic handlers (Debian has
no grpc_tools to generate stubs). run_case() runs one case of cases.py with
grpcio's client and reports it in the common result form.
"""

import hashlib
import queue
import threading
import time
from concurrent import futures

import grpc

from echo_pb import SERVICE, EchoReply, EchoRequest, Pair

STATUS_BY_CODE = {s.value[0]: s for s in grpc.StatusCode}
MAX_MSG = 16 << 20
OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MSG),
    ("grpc.max_send_message_length", MAX_MSG),
]


def md_value(key, v):
    if key.endswith("-bin"):
        return bytes(v).hex()
    return v if isinstance(v, str) else v.decode()


def md_pairs(md):
    return sorted([k, md_value(k, v)] for k, v in (md or ()))


# ------------------------------------------------------------------- server


def _sleep_while_active(ctx, ms):
    end = time.monotonic() + ms / 1000.0
    while ctx.is_active() and time.monotonic() < end:
        time.sleep(min(0.01, max(0.0, end - time.monotonic())))
    return ctx.is_active()


def _echo(req, ctx):
    _sleep_while_active(ctx, req.delay_ms)
    return EchoReply(text=req.text, payload=req.payload)


def _count(req, ctx):
    for i in range(req.count):
        if not _sleep_while_active(ctx, req.delay_ms):
            return
        yield EchoReply(text="%s-%d" % (req.text, i), index=i, payload=req.payload)


def _chat(reqs, ctx):
    for i, req in enumerate(reqs):
        yield EchoReply(text=req.text, index=i)


def _collect(reqs, ctx):
    texts = [r.text for r in reqs]
    return EchoReply(text=",".join(texts), index=len(texts))


def _fail(req, ctx):
    if req.status:
        ctx.abort(STATUS_BY_CODE[req.status], req.status_message)
    return EchoReply()


def _metadata(req, ctx):
    got = list(ctx.invocation_metadata())
    initial, trailing, pairs = [], [], []
    for key in req.echo_keys:
        for k, v in got:
            if k == key:
                initial.append((key, v))
                trailing.append(("trailer-" + key, v))
                pairs.append(Pair(key=key, value=md_value(key, v)))
    ctx.send_initial_metadata(initial)
    ctx.set_trailing_metadata(trailing)
    return EchoReply(metadata=pairs)


def _handlers():
    ser, de = EchoReply.SerializeToString, EchoRequest.FromString
    h = {
        "Echo": grpc.unary_unary_rpc_method_handler(_echo, de, ser),
        "Count": grpc.unary_stream_rpc_method_handler(_count, de, ser),
        "Chat": grpc.stream_stream_rpc_method_handler(_chat, de, ser),
        "Collect": grpc.stream_unary_rpc_method_handler(_collect, de, ser),
        "Fail": grpc.unary_unary_rpc_method_handler(_fail, de, ser),
        "Metadata": grpc.unary_unary_rpc_method_handler(_metadata, de, ser),
    }
    return grpc.method_handlers_generic_handler(SERVICE, h)


def serve(unix=None, cert=None, key=None, ca=None):
    """Starts a grpcio server on `unix` (a path) or, with cert and key (PEM
    bytes), TLS on 127.0.0.1 with a free port; with ca, client certificates
    are required. Returns (server, port); the caller stops it."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=OPTIONS)
    server.add_generic_rpc_handlers((_handlers(),))
    port = None
    if unix:
        server.add_insecure_port("unix:" + unix)
    else:
        creds = grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None)
        port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    return server, port


# ------------------------------------------------------------------- client


def channel(target, ca=None, cert=None, key=None, server_name=None, options=()):
    """A grpcio channel to unix:PATH (insecure) or HOST:PORT over TLS."""
    opts = list(OPTIONS) + list(options)
    if ca is None:
        return grpc.insecure_channel(target, options=opts)
    if server_name:
        opts.append(("grpc.ssl_target_name_override", server_name))
    creds = grpc.ssl_channel_credentials(ca, key, cert)
    return grpc.secure_channel(target, creds, options=opts)


def request_of(r):
    n = r.get("payload_len", 0)
    return EchoRequest(
        text=r.get("text", ""), count=r.get("count", 0), delay_ms=r.get("delay_ms", 0),
        status=r.get("status", 0), status_message=r.get("status_message", ""),
        echo_keys=r.get("echo_keys", []), payload=bytes(i % 251 for i in range(n)))


def reply_out(rep):
    return {
        "text": rep.text, "index": rep.index,
        "metadata": [[p.key, p.value] for p in rep.metadata],
        "payload_len": len(rep.payload),
        "payload_sha256": hashlib.sha256(rep.payload).hexdigest(),
    }


def run_case(ch, case):
    """Runs one case of cases.py on channel ch; returns the result dict."""
    kind = case["kind"]
    reqs = [request_of(r) for r in case.get("requests", [{}])]
    md = [(k, bytes.fromhex(v) if k.endswith("-bin") else v)
          for k, v in case.get("metadata", [])]
    timeout = case["timeout_ms"] / 1000.0 if case.get("timeout_ms") else None
    ser, de = EchoRequest.SerializeToString, EchoReply.FromString
    out = {"name": case["name"], "replies": []}
    started = time.monotonic()
    call = None
    try:
        if kind == "unary":
            mc = ch.unary_unary(case["method"], request_serializer=ser,
                                response_deserializer=de)
            rep, call = mc.with_call(reqs[0], timeout=timeout, metadata=md)
            out["replies"].append(reply_out(rep))
        elif kind == "client_stream":
            mc = ch.stream_unary(case["method"], request_serializer=ser,
                                 response_deserializer=de)
            rep, call = mc.with_call(iter(reqs), timeout=timeout, metadata=md)
            out["replies"].append(reply_out(rep))
        elif kind == "server_stream":
            mc = ch.unary_stream(case["method"], request_serializer=ser,
                                 response_deserializer=de)
            call = mc(reqs[0], timeout=timeout, metadata=md)
            for rep in call:
                out["replies"].append(reply_out(rep))
        elif kind == "bidi_burst":
            mc = ch.stream_stream(case["method"], request_serializer=ser,
                                  response_deserializer=de)
            call = mc(iter(reqs), timeout=timeout, metadata=md)
            for rep in call:
                out["replies"].append(reply_out(rep))
        elif kind == "bidi":
            mc = ch.stream_stream(case["method"], request_serializer=ser,
                                  response_deserializer=de)
            q = queue.Queue()
            q.put(reqs[0])

            def gen():
                while True:
                    item = q.get()
                    if item is None:
                        return
                    yield item

            call = mc(gen(), timeout=timeout, metadata=md)
            # Ping-pong: the next request goes out once the previous reply came.
            nxt = 1
            for rep in call:
                out["replies"].append(reply_out(rep))
                q.put(reqs[nxt] if nxt < len(reqs) else None)
                nxt += 1
            q.put(None)
        else:
            raise ValueError(kind)
    except grpc.RpcError as e:
        call = e
    out["code"] = call.code().value[0]
    out["message"] = call.details() or ""
    out["initial_metadata"] = md_pairs(call.initial_metadata())
    out["trailing_metadata"] = md_pairs(call.trailing_metadata())
    out["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    return out


def run_cases(ch, cases):
    return [run_case(ch, c) for c in cases]


if __name__ == "__main__":
    # Sanity: python client against python server, over a unix socket.
    import os
    import shutil
    import sys
    import tempfile

    import cases as cs

    d = tempfile.mkdtemp()
    path = os.path.join(d, "s")
    srv, _ = serve(unix=path)
    threading.Event().wait(0.2)
    ch = channel("unix:" + path)
    bad = 0
    for c in cs.CASES:
        r = run_case(ch, c)
        try:
            cs.check(r)
            print("ok  ", c["name"])
        except AssertionError as e:
            bad += 1
            print("FAIL", c["name"], e)
    srv.stop(0)
    shutil.rmtree(d, ignore_errors=True)
    sys.exit(1 if bad else 0)
