"""Hand-built HTTP/2 (RFC 9113) for the abuse tests: frames are packed with
struct so that a test can send what no well-behaved client would (a 100 MiB
frame length, garbage instead of the preface, streams beyond the limit,
resets in a tight loop). Header blocks are HPACK-coded with python3-hpack;
everything else is here.

H2Conn is a tiny client connection over a unix socket or TLS that records
what the server sent per stream (headers, trailers, data, RST_STREAM) and
for the connection (SETTINGS, GOAWAY, EOF).
"""

import socket
import ssl
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0, 1, 2, 3, 4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 5, 6, 7, 8, 9

END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

# SETTINGS identifiers
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS = 1, 2, 3
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 4, 5, 6

# error codes
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 6, 7, 8, 11

MAX_WINDOW = (1 << 31) - 1


def frame(ftype, flags, sid, payload=b"", length=None):
    """One frame; `length` overrides the length field (to lie about it)."""
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


def settings(pairs=(), ack=False):
    body = b"".join(struct.pack(">HI", k, v) for k, v in pairs)
    return frame(SETTINGS, ACK if ack else 0, 0, body)


def window_update(sid, inc):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", inc))


def rst_stream(sid, code=CANCEL):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def grpc_message(payload, compressed=0, length=None):
    """A gRPC length-prefixed message; `length` overrides the prefix."""
    n = len(payload) if length is None else length
    return struct.pack(">BI", compressed, n) + payload


def encode_varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def echo_request(text="", delay_ms=0, count=0, payload=b""):
    """An anchor.interop.EchoRequest, protobuf-encoded by hand (fields 1, 2,
    3 and 7), so that frames can be built without a descriptor."""
    out = b""
    if text:
        t = text.encode()
        out += b"\x0a" + encode_varint(len(t)) + t
    if count:
        out += b"\x10" + encode_varint(count)
    if delay_ms:
        out += b"\x18" + encode_varint(delay_ms)
    if payload:
        out += b"\x3a" + encode_varint(len(payload)) + payload
    return out


def request_headers(path, authority="localhost", scheme="http", timeout=None,
                    content_type="application/grpc", extra=()):
    h = [(":method", "POST"), (":scheme", scheme), (":path", path),
         (":authority", authority), ("content-type", content_type), ("te", "trailers")]
    if timeout is not None:
        h.append(("grpc-timeout", timeout))
    return h + list(extra)


class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.headers = None
        self.trailers = None
        self.data = b""
        self.rst = None
        self.ended = False

    def status(self):
        """grpc-status from trailers (or a Trailers-Only header block)."""
        for block in (self.trailers, self.headers):
            if block:
                for k, v in block:
                    if k == "grpc-status":
                        return int(v)
        return None

    def http_status(self):
        for k, v in self.headers or ():
            if k == ":status":
                return int(v)
        return None

    def messages(self):
        out, buf = [], self.data
        while len(buf) >= 5:
            flag, n = struct.unpack(">BI", buf[:5])
            if len(buf) < 5 + n:
                break
            out.append(buf[5:5 + n])
            buf = buf[5 + n:]
        return out


class H2Conn:
    """A raw HTTP/2 client connection (prior knowledge, or TLS with ALPN h2)."""

    def __init__(self, unix=None, port=None, ca=None, cert=None, key=None, timeout=10):
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            # A blocking connect: a non-blocking one fails with EAGAIN as soon
            # as the listen backlog is full, before the server had a chance.
            self.sock.connect(unix)
            self.sock.settimeout(timeout)
            self.scheme = "http"
        else:
            raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            ctx = ssl.create_default_context(cafile=ca)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.set_alpn_protocols(["h2"])
            if cert:
                ctx.load_cert_chain(cert, key)
            self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
            self.scheme = "https"
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_allowed_table_size = 1 << 16
        self.buf = b""
        self.streams = {}
        self.server_settings = {}
        self.goaway = None
        self.eof = False
        self.auto_window = True
        self.auto_settings_ack = True
        self.next_sid = 1
        self._pending_headers = None

    # -- sending

    def send(self, data):
        self.sock.sendall(data)

    def start(self, pairs=()):
        """Sends the preface and our SETTINGS."""
        self.send(PREFACE + settings(pairs))

    def open_stream(self, path, msg=None, end=True, timeout=None, extra=(),
                    content_type="application/grpc", raw_body=None):
        """HEADERS for path, then (unless msg and raw_body are None) one DATA
        frame with msg as a gRPC message or raw_body as is. Returns the
        stream id."""
        sid = self.next_sid
        self.next_sid += 2
        self.streams[sid] = Stream(sid)
        hdrs = request_headers(path, scheme=self.scheme, timeout=timeout, extra=extra,
                               content_type=content_type)
        body = raw_body if raw_body is not None else (
            grpc_message(msg) if msg is not None else None)
        flags = END_HEADERS | (END_STREAM if body is None and end else 0)
        out = frame(HEADERS, flags, sid, self.enc.encode(hdrs))
        if body is not None:
            out += frame(DATA, END_STREAM if end else 0, sid, body)
        self.send(out)
        return sid

    # -- receiving

    def _read_some(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            chunk = self.sock.recv(1 << 16)
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _frames(self):
        while len(self.buf) >= 9:
            n = struct.unpack(">I", b"\0" + self.buf[:3])[0]
            if len(self.buf) < 9 + n:
                return
            ftype, flags, sid = struct.unpack(">BBI", self.buf[3:9])
            payload = self.buf[9:9 + n]
            self.buf = self.buf[9 + n:]
            self._on_frame(ftype, flags, sid & 0x7FFFFFFF, payload)

    def _on_frame(self, ftype, flags, sid, payload):
        st = self.streams.get(sid)
        if ftype == SETTINGS and not flags & ACK:
            for i in range(0, len(payload) - 5, 6):
                k, v = struct.unpack(">HI", payload[i:i + 6])
                self.server_settings[k] = v
            if self.auto_settings_ack:
                try:
                    self.send(settings(ack=True))
                except OSError:
                    pass
        elif ftype == PING and not flags & ACK:
            try:
                self.send(frame(PING, ACK, 0, payload))
            except OSError:
                pass
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = (last & 0x7FFFFFFF, code, payload[8:])
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                if flags & PADDED:
                    pad = payload[0]
                    payload = payload[1:len(payload) - pad]
                if flags & PRIORITY_FLAG:
                    payload = payload[5:]
                self._pending_headers = [sid, flags, payload]
            else:
                self._pending_headers[2] += payload
                flags = flags | (self._pending_headers[1] & END_STREAM)
            if flags & END_HEADERS:
                sid, hflags, block = self._pending_headers
                self._pending_headers = None
                hdrs = [(k.decode() if isinstance(k, bytes) else k,
                         v.decode() if isinstance(v, bytes) else v)
                        for k, v in self.dec.decode(block, raw=True)]
                st = self.streams.setdefault(sid, Stream(sid))
                if st.headers is None:
                    st.headers = hdrs
                else:
                    st.trailers = hdrs
                if hflags & END_STREAM:
                    st.ended = True
        elif ftype == DATA:
            if flags & PADDED:
                pad = payload[0]
                payload = payload[1:len(payload) - pad]
            if st is not None:
                st.data += payload
                if flags & END_STREAM:
                    st.ended = True
            if self.auto_window and payload:
                try:
                    self.send(window_update(0, len(payload)) + (
                        window_update(sid, len(payload)) if st and not st.ended else b""))
                except OSError:
                    pass
        elif ftype == RST_STREAM:
            st = self.streams.setdefault(sid, Stream(sid))
            st.rst = struct.unpack(">I", payload[:4])[0]
            st.ended = True

    def pump(self, until=lambda c: False, timeout=5.0):
        """Reads frames until until(self) holds, EOF, or timeout; returns
        whether until(self) holds."""
        deadline = time.monotonic() + timeout
        while not until(self):
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                break
            if self._read_some(min(left, 0.2)):
                self._frames()
        return until(self)

    def wait_ended(self, sids, timeout=5.0):
        return self.pump(lambda c: all(c.streams[s].ended for s in sids) or c.eof, timeout)

    def wait_closed(self, timeout=5.0):
        """True once the server closed the connection (EOF)."""
        return self.pump(lambda c: c.eof, timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wait_eof(sock, timeout):
    """Reads and drops whatever a raw socket receives until EOF; returns the
    seconds it took, or None if the peer did not close within timeout."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 16)
        except (socket.timeout, TimeoutError):
            return None
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            chunk = b""
        if not chunk:
            return time.monotonic() - start


def serve_raw(sock, respond, timeout=10.0, seen=None):
    """The server side of one connection, by hand: reads the client preface
    and frames, ACKs SETTINGS and PINGs, and for each request (a HEADERS
    frame that opens stream sid) sends respond(sid, n, enc), n counting
    requests from 0 and enc the connection's HPACK encoder. Every frame read
    is appended to `seen` (type, flags, stream, payload) when given. Returns
    when the client closes or after timeout."""
    sock.settimeout(timeout)
    enc = hpack.Encoder()
    buf = b""
    n = 0
    started = False
    sock.sendall(settings([(MAX_CONCURRENT_STREAMS, 100)]))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 16)
        except (socket.timeout, TimeoutError, OSError):
            return
        if not chunk:
            return
        buf += chunk
        if not started:
            if len(buf) < len(PREFACE):
                continue
            if buf[:len(PREFACE)] != PREFACE:
                return
            buf = buf[len(PREFACE):]
            started = True
        while len(buf) >= 9:
            ln = struct.unpack(">I", b"\0" + buf[:3])[0]
            if len(buf) < 9 + ln:
                break
            ftype, flags, sid = struct.unpack(">BBI", buf[3:9])
            payload = buf[9:9 + ln]
            buf = buf[9 + ln:]
            if seen is not None:
                seen.append((ftype, flags, sid & 0x7FFFFFFF, payload))
            if ftype == SETTINGS and not flags & ACK:
                sock.sendall(settings(ack=True))
            elif ftype == PING and not flags & ACK:
                sock.sendall(frame(PING, ACK, 0, payload))
            elif ftype == HEADERS:
                out = respond(sid & 0x7FFFFFFF, n, enc)
                n += 1
                if out:
                    sock.sendall(out)


def response_headers(enc, sid, headers, end_stream):
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid,
                 enc.encode(headers))
