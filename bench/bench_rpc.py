#!/usr/bin/python3
"""RPC benchmark for bench/README.md: unary calls per second and latency
percentiles of libanchor's gRPC server (bench_rpc server), called by
libanchor's client (bench_rpc client) and by python3-grpcio's client, over a
unix socket and over TLS 1.3 on 127.0.0.1. Server and client are separate
processes (the machine has 2 cores: one each). Loopback only, bounded.

    /usr/bin/python3 bench/bench_rpc.py [BUILD_DIR] [--calls N] [--size B] [--repeat R]

BUILD_DIR defaults to build/release (make build); use a build without
sanitizers for figures. Prints a markdown table.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))

import grpc  # noqa: E402

import testpki  # noqa: E402

PATH = "/anchor.bench.Bench/Echo"


def find_program(build):
    for p in (os.path.join(build, "bench", "bench_rpc"), os.path.join(build, "bench_rpc")):
        if os.access(p, os.X_OK):
            return p
    sys.exit("bench_rpc not found in %s (build it first: make build)" % build)


def pct(sorted_ns, p):
    return sorted_ns[min(len(sorted_ns) - 1, int(p * (len(sorted_ns) - 1) + 0.5))] / 1000.0


def grpcio_client(target, pki_dir, calls, warmup, concurrency, size):
    opts = []
    if target.startswith("unix:"):
        ch = grpc.insecure_channel(target)
    else:
        with open(os.path.join(pki_dir, "ca.pem"), "rb") as f:
            creds = grpc.ssl_channel_credentials(f.read())
        opts.append(("grpc.ssl_target_name_override", "localhost"))
        ch = grpc.secure_channel(target, creds, options=opts)
    ident = lambda b: b  # noqa: E731
    mc = ch.unary_unary(PATH, request_serializer=ident, response_deserializer=ident)
    msg = b"a" * size
    for _ in range(warmup):
        mc(msg, timeout=10)
    lat = []
    errors = 0
    t0 = time.perf_counter_ns()
    if concurrency == 1:
        for _ in range(calls):
            s = time.perf_counter_ns()
            mc(msg, timeout=10)
            lat.append(time.perf_counter_ns() - s)
    else:
        sem = threading.Semaphore(concurrency)
        lock = threading.Lock()
        done = threading.Event()
        count = [0]

        def finished(fut, started):
            nonlocal errors
            end = time.perf_counter_ns()
            with lock:
                if fut.exception() is not None:
                    errors += 1
                lat.append(end - started)
                count[0] += 1
                if count[0] == calls:
                    done.set()
            sem.release()

        for _ in range(calls):
            sem.acquire()
            s = time.perf_counter_ns()
            fut = mc.future(msg, timeout=10)
            fut.add_done_callback(lambda f, s=s: finished(f, s))
        done.wait(120)
    secs = (time.perf_counter_ns() - t0) / 1e9
    ch.close()
    lat.sort()
    return {"calls": calls, "concurrency": concurrency, "seconds": round(secs, 3),
            "calls_per_s": calls / secs, "p50_us": pct(lat, 0.5), "p90_us": pct(lat, 0.9),
            "p99_us": pct(lat, 0.99), "max_us": lat[-1] / 1000.0, "errors": errors}


def anchor_client(prog, target, pki_dir, calls, warmup, concurrency, size):
    argv = [prog, "client", "--calls", str(calls), "--warmup", str(warmup),
            "--concurrency", str(concurrency), "--size", str(size)]
    if target.startswith("unix:"):
        argv += ["--unix", target[5:]]
    else:
        argv += ["--tls", target, "--ca", os.path.join(pki_dir, "ca.pem"),
                 "--server-name", "localhost"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        sys.exit("bench_rpc client failed: %s" % r.stderr)
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default=os.path.join(HERE, "..", "build", "release"))
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    prog = find_program(a.build)
    d = tempfile.mkdtemp(prefix="bench-rpc-")
    srv = None
    try:
        testpki.make(d)
        sock = os.path.join(d, "s")
        srv = subprocess.Popen([prog, "server", "--unix", sock, "--tls-port", "0",
                                "--cert", os.path.join(d, "server.pem"),
                                "--key", os.path.join(d, "server.key")],
                               stdout=subprocess.PIPE, text=True)
        port = json.loads(srv.stdout.readline())["port"]
        targets = [("unix socket", "unix:" + sock), ("TLS 1.3", "127.0.0.1:%d" % port)]
        rows = []
        for tname, target in targets:
            for cname, fn in (("libanchor", lambda *x: anchor_client(prog, *x)),
                              ("python3-grpcio " + grpc.__version__, grpcio_client)):
                for conc in (1, 16):
                    runs = []
                    for _ in range(a.repeat):
                        runs.append(fn(target, d, a.calls, a.warmup, conc, a.size))
                        print("# %s / %s / %d in flight: %s" % (
                            tname, cname, conc, json.dumps(runs[-1])), file=sys.stderr)
                    # The median of each figure over the runs (a shared VM is noisy).
                    r = {k: statistics.median(x[k] for x in runs)
                         for k in ("calls_per_s", "p50_us", "p99_us")}
                    rows.append((tname, cname, conc, r))
        print("| transport | client | in flight | calls/s | p50 µs | p99 µs |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for tname, cname, conc, r in rows:
            print("| %s | %s | %d | %.0f | %.0f | %.0f |" % (
                tname, cname, conc, r["calls_per_s"], r["p50_us"], r["p99_us"]))
        print("\nMedians of %d runs; each run: %d unary calls of %d bytes after %d warm-up "
              "calls, on one connection, to libanchor's server (bench_rpc server)."
              % (a.repeat, a.calls, a.size, a.warmup))
    finally:
        if srv is not None:
            srv.terminate()
            srv.wait(30)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
