"""Fixtures of the interop tests: where the C peers are, a test PKI, node's
grpc-js (npm ci on first use), and processes that are always stopped.

Run by ctest (tests/CMakeLists.txt) with Debian's /usr/bin/python3, or by hand:
    ANCHOR_BINARY_DIR=build/interop /usr/bin/python3 -m pytest tests/interop
"""

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import testpki  # noqa: E402

SOURCE_DIR = os.environ.get("ANCHOR_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
BINARY_DIR = os.environ.get("ANCHOR_BINARY_DIR", os.path.join(SOURCE_DIR, "build", "interop"))
PEER_DIR = os.path.join(BINARY_DIR, "tests", "interop")
TRUST_DOMAIN = "interop.test"

# Sanitizer reports in a C peer's stderr fail the test that ran it.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def peer_program(name):
    path = os.path.join(PEER_DIR, name)
    if not os.access(path, os.X_OK):
        pytest.fail("%s is not built (cmake --build %s)" % (path, BINARY_DIR))
    return path


# ---------------------------------------------------------------------- PKI


class Pki:
    """PEM files of a test CA, a server certificate (DNS localhost, IP
    127.0.0.1, spiffe://interop.test/server), a client certificate
    (spiffe://interop.test/client), and a second CA that trusts neither."""

    def __init__(self, d):
        self.dir = d

    def path(self, name):
        return os.path.join(self.dir, name)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    testpki.make(d, TRUST_DOMAIN)
    return Pki(d)


@pytest.fixture
def sockdir():
    """A short directory for unix sockets (sun_path holds 108 bytes)."""
    d = tempfile.mkdtemp(prefix="anchor-interop-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def module_sockdir():
    d = tempfile.mkdtemp(prefix="anchor-interop-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------- node


def _npm_ci():
    """Installs tests/interop/node_modules from package-lock.json, once: under
    a lock (ctest runs test files in parallel), only when missing or older
    than the lock file."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed (scripts/install-deps installs them)")
    stamp = os.path.join(HERE, "node_modules", ".package-lock.json")
    lock = os.path.join(HERE, "package-lock.json")
    with open(os.path.join(tempfile.gettempdir(), "anchor-interop-npm.lock"), "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        if os.path.exists(stamp) and os.path.getmtime(stamp) >= os.path.getmtime(lock):
            return
        r = subprocess.run(
            ["npm", "ci", "--silent", "--no-audit", "--no-fund", "--no-progress"],
            cwd=HERE, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            pytest.fail("npm ci failed in %s:\n%s%s" % (HERE, r.stdout, r.stderr))


@pytest.fixture(scope="session")
def node():
    _npm_ci()
    return shutil.which("node")


# ---------------------------------------------------------------- processes


class Proc:
    """A peer process started by a test; its stderr goes to a file, and its
    first stdout line (JSON) says that it is ready."""

    def __init__(self, argv, name, env=None, ready=True, timeout=20):
        self.name = name
        self.errf = tempfile.NamedTemporaryFile(prefix="anchor-%s-" % name, suffix=".err",
                                                delete=False)
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        e.update(env or {})
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.errf, env=e,
                                  cwd=HERE)
        self.pid = self.p.pid
        self.info = None
        if ready:
            self.info = json.loads(self.readline(timeout))

    def readline(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.p.stdout.fileno()
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.kill()
                raise AssertionError("%s not ready in %ss: %s" % (self.name, timeout,
                                                                   self.stderr()))
            c = os.read(fd, 1)
            if not c:
                raise AssertionError("%s exited (%s): %s" % (self.name, self.p.wait(),
                                                              self.stderr()))
            buf += c
        return buf.decode()

    def stderr(self):
        self.errf.flush()
        with open(self.errf.name, "rb") as f:
            return f.read().decode(errors="replace")[-6000:]

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def alive(self):
        return self.p.poll() is None

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def stop(self, timeout=15):
        """SIGTERM, wait; returns the exit code (killed after timeout)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("%s did not stop on SIGTERM in %ss: %s" % (
                    self.name, timeout, self.stderr()))
        return self.p.returncode

    def wait_exit(self, timeout=15):
        """Waits for the process to exit by itself; returns its exit code."""
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s still running after %ss: %s" % (
                self.name, timeout, self.stderr()))

    def assert_clean_exit_by_itself(self, timeout=15):
        """Like assert_clean_exit, for a process that was told to stop."""
        rc = self.wait_exit(timeout)
        err = self.stderr()
        assert not any(m in err for m in SANITIZER_MARKS), "%s: %s" % (self.name, err)
        assert rc == 0, "%s exited %s: %s" % (self.name, rc, err)

    def close(self):
        self.kill()
        self.p.stdout.close()
        self.errf.close()
        os.unlink(self.errf.name)

    def assert_clean_exit(self):
        """Stops the process and asserts exit 0 with no sanitizer report."""
        rc = self.stop()
        err = self.stderr()
        assert not any(m in err for m in SANITIZER_MARKS), "%s: %s" % (self.name, err)
        assert rc == 0, "%s exited %s: %s" % (self.name, rc, err)


class AnchorServer(Proc):
    """libanchor's interop_server on a unix socket and/or TLS on 127.0.0.1."""

    def __init__(self, sockdir, pki=None, tls=False, mtls=True, unix=True, extra=(), env=None):
        argv = [peer_program("interop_server")]
        self.unix = os.path.join(sockdir, "anchor.sock") if unix else None
        if self.unix:
            argv += ["--unix", self.unix]
        if tls:
            argv += ["--tls-port", "0", "--cert", pki.path("server.pem"),
                     "--key", pki.path("server.key")]
            if mtls:
                argv += ["--ca", pki.path("ca.pem")]
        argv += list(extra)
        super().__init__(argv, "interop_server", env=env)
        self.port = self.info["port"]


@pytest.fixture
def procs():
    """Starts processes for one test and always stops them."""
    started = []

    class Starter:
        def anchor_server(self, *a, **kw):
            p = AnchorServer(*a, **kw)
            started.append(p)
            return p

        def start(self, argv, name, **kw):
            p = Proc(argv, name, **kw)
            started.append(p)
            return p

    yield Starter()
    for p in started:
        p.close()


def run_anchor_client(cases, sockdir, unix=None, port=None, pki=None, cert=True, ca="ca.pem",
                      timeout=120, extra=()):
    """Runs interop_client on the cases; returns {name: result}, the exit
    status and stderr."""
    cf = os.path.join(sockdir, "cases.json")
    with open(cf, "w") as f:
        json.dump(cases, f)
    argv = [peer_program("interop_client"), "--cases", cf]
    if unix:
        argv += ["--unix", unix]
    else:
        argv += ["--tls", "127.0.0.1:%d" % port, "--ca", pki.path(ca),
                 "--server-name", "localhost"]
        if cert:
            argv += ["--cert", pki.path("client.pem"), "--key", pki.path("client.key")]
    argv += list(extra)
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    results = {}
    for line in r.stdout.splitlines():
        o = json.loads(line)
        results[o["name"]] = o
    return results, r.returncode, r.stderr


def run_node_client(node, cases, sockdir, target, pki=None, cert=True, timeout=120):
    cf = os.path.join(sockdir, "node-cases.json")
    with open(cf, "w") as f:
        json.dump(cases, f)
    argv = [node, os.path.join(HERE, "node_peer.js"), "client", "--target", target,
            "--cases", cf]
    if pki is not None:
        argv += ["--ca", pki.path("ca.pem"), "--server-name", "localhost"]
        if cert:
            argv += ["--cert", pki.path("client.pem"), "--key", pki.path("client.key")]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    results = {}
    for line in r.stdout.splitlines():
        o = json.loads(line)
        results[o["name"]] = o
    return results, r.returncode, r.stderr
