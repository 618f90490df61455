"""ws - a minimal websocket client (RFC 6455) for frontdesk's tests, stdlib only.

Enough to act as a browser: the opening handshake, masked text frames out
(any size, or a deliberately broken one), and reading text/binary/close/ping
frames in.  Loopback only; no TLS, no extensions.

    c = ws.connect(port, "/hooks/demo")
    c.send_json({"type": "hello", ...})
    msg = c.recv_json(timeout=5)          # None on timeout
    m = c.wait_for(lambda m: m.get("type") == "board", timeout=5)
"""
import base64
import hashlib
import json
import os
import socket
import struct
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Closed(Exception):
    pass


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.closed = False
        self.received = []   # every decoded JSON message, in order
        self.pending = []    # received, not yet taken by wait_for

    # ---- sending ----
    def send_frame(self, opcode, payload, fin=True, mask=True):
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            head += bytes([mbit | n])
        elif n < 65536:
            head += bytes([mbit | 126]) + struct.pack("!H", n)
        else:
            head += bytes([mbit | 127]) + struct.pack("!Q", n)
        if mask:
            key = os.urandom(4)
            head += key
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + payload)

    def send_text(self, text):
        data = text.encode() if isinstance(text, str) else text
        self.send_frame(0x1, data)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def close(self):
        if not self.closed:
            try:
                self.send_frame(0x8, struct.pack("!H", 1000))
            except OSError:
                pass
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- receiving ----
    def _parse(self):
        """One whole frame from the buffer as (fin, opcode, payload), or
        None while incomplete; nothing is consumed until it is whole."""
        b = self.buf
        if len(b) < 2:
            return None
        n = b[1] & 0x7F
        pos = 2
        if n == 126:
            if len(b) < 4:
                return None
            n = struct.unpack("!H", b[2:4])[0]
            pos = 4
        elif n == 127:
            if len(b) < 10:
                return None
            n = struct.unpack("!Q", b[2:10])[0]
            pos = 10
        key = None
        if b[1] & 0x80:
            if len(b) < pos + 4:
                return None
            key = b[pos:pos + 4]
            pos += 4
        if len(b) < pos + n:
            return None
        payload = b[pos:pos + n]
        self.buf = b[pos + n:]
        if key:
            payload = bytes(x ^ key[i % 4] for i, x in enumerate(payload))
        return bool(b[0] & 0x80), b[0] & 0x0F, payload

    def _frame(self, deadline):
        while True:
            f = self._parse()
            if f:
                return f
            left = deadline - time.time()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                self.closed = True
                raise Closed("connection closed")
            self.buf += chunk

    def recv_frame(self, timeout=5.0):
        """(opcode, payload) of one whole message; raises socket.timeout or
        Closed.  Answers pings; joins continuation frames."""
        deadline = time.time() + timeout
        data = b""
        first_op = None
        while True:
            fin, op, payload = self._frame(deadline)
            if op == 0x9:          # ping
                self.send_frame(0xA, payload)
                continue
            if op == 0xA:          # pong
                continue
            if op == 0x8:
                self.closed = True
                raise Closed("close frame %r" % payload[:2])
            if op != 0:
                first_op = op
            data += payload
            if fin:
                return first_op, data

    def recv_json(self, timeout=5.0):
        """The next JSON message off the wire, or None on timeout.  Also
        recorded in `received` (everything ever) and `pending` (not yet
        taken by wait_for)."""
        try:
            _, data = self.recv_frame(timeout)
        except socket.timeout:
            return None
        m = json.loads(data.decode())
        self.received.append(m)
        self.pending.append(m)
        return m

    def wait_for(self, pred, timeout=5.0):
        """Takes the first message, already received or arriving within
        `timeout`, that satisfies pred; others stay pending, so the order in
        which the daemon sends unrelated messages does not matter."""
        for i, m in enumerate(self.pending):
            if pred(m):
                del self.pending[i]
                return m
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                return None
            m = self.recv_json(left)
            if m is None:
                return None
            if pred(m):
                self.pending.pop()  # m, just appended by recv_json
                return m

    def drain(self, timeout=0.3):
        """Every message arriving until none came for `timeout` (they stay
        pending too)."""
        out = []
        while True:
            m = self.recv_json(timeout)
            if m is None:
                return out
            out.append(m)


def connect(port, path="/", host="127.0.0.1", timeout=5.0, headers=None):
    """Opens a websocket to 127.0.0.1:port/path; raises on a refused upgrade."""
    sock = socket.create_connection((host, port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET %s HTTP/1.1" % path,
        "Host: %s:%d" % (host, port),
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: " + key,
        "Sec-WebSocket-Version: 13",
        "Origin: http://%s:%d" % (host, port),
    ]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    resp = b""
    deadline = time.time() + timeout
    while b"\r\n\r\n" not in resp:
        if time.time() > deadline:
            sock.close()
            raise socket.timeout("no handshake answer")
        chunk = sock.recv(4096)
        if not chunk:
            sock.close()
            raise Closed("closed during handshake: %r" % resp[:200])
        resp += chunk
    head, rest = resp.split(b"\r\n\r\n", 1)
    status = head.split(b"\r\n", 1)[0]
    if b" 101" not in status:
        sock.close()
        raise Closed("upgrade refused: %r" % status)
    want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest())
    if want not in head:
        sock.close()
        raise Closed("bad Sec-WebSocket-Accept")
    c = Conn(sock)
    c.buf = rest
    return c
