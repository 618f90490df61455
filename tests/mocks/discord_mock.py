"""discord_mock - a small Discord (REST v10 + Gateway v10) for frontdesk's tests.

Two servers on 127.0.0.1 (random ports) in threads of the test process,
Python 3 standard library only:

* REST under /api/v10: GET /gateway/bot (-> ws://127.0.0.1:<gateway port>),
  GET /users/@me, POST /users/@me/channels, POST /channels/{id}/messages,
  DELETE /channels/{id}/messages/{id}.  Every request must carry
  `Authorization: Bot <token>`, bodies must be JSON objects; everything is
  recorded.  Create message honours nonce + enforce_nonce like Discord (the
  same nonce again returns the first message, nothing new is posted).
* Gateway: a minimal RFC 6455 server.  Hello with a (short) heartbeat
  interval, Identify -> READY (session_id, resume_gateway_url), Resume ->
  the events after the given seq replayed, then RESUMED (or op 9 d=false
  for an unknown session), heartbeats ACKed, dispatches with increasing
  `s`.  A client that closes with 1000/1001 ends its session (Discord
  does); a connection that just drops leaves it resumable.

Misbehaviour on command: drop the connection (at once, or after n more
dispatches), stop ACKing heartbeats, send op 7 / op 9, close with a code,
revoke the token (REST 401, gateway 4004), close every Identify with a code,
answer 429 (retry_after, global), keep per-channel buckets announced with
X-RateLimit-* headers (bucket()), refuse DMs with 50007.  The mock also
checks that no request arrives while a 429 it gave is still in force
(`violations`).

    mock = DiscordMock("tok").start()
    m = mock.message("Wann habt ihr geöffnet?", channel_id=CH, user_id="42")
    mock.wait_sent(lambda s: s["reply_to"] == m["id"])
    mock.stop()
"""
import base64
import hashlib
import json
import math
import re
import socket
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BOT_ID = "900000000000000001"
BOT_NAME = "frontdesk-test"
GUILD = "910000000000000001"
GRACE = 0.1   # s: requests this soon after a 429 were sent before it arrived


def snowflake_ok(s):
    return isinstance(s, str) and re.fullmatch(r"[0-9]{1,20}", s) is not None


# ---- the gateway's websocket side ---------------------------------------------

class WsConn:
    """One gateway connection (server side) and what happened on it."""

    def __init__(self, mock, sock, path, headers):
        self.mock = mock
        self.sock = sock
        self.path = path
        self.headers = headers
        self.opened = time.time()
        self.closed = None          # time the connection ended
        self.closed_by = None       # "client-close <code>", "client-eof", "server-drop", "server-close <code>"
        self.client_code = None     # close code the client sent, if any
        self.identify = None        # its Identify payload (d)
        self.resume = None          # its Resume payload (d)
        self.ready = None           # time READY/RESUMED went out
        self.session = None
        self.heartbeats = []        # (time, d)
        self.hello_at = None
        self.buf = b""
        self.alive = True
        self.sent_events = 0
        self.last_seq = None        # seq of the last dispatch sent on it

    # Sending happens under mock.lock (one writer at a time, ordered with
    # the session's events).
    def _frame(self, opcode, payload):
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack("!H", n)
        else:
            head += bytes([127]) + struct.pack("!Q", n)
        try:
            self.sock.sendall(head + payload)
            return True
        except OSError:
            self.alive = False
            return False

    def send_json(self, obj):
        if self.alive:
            return self._frame(0x1, json.dumps(obj).encode())
        return False

    def close_with(self, code, reason=""):
        if not self.alive:
            return
        self._frame(0x8, struct.pack("!H", code) + reason.encode()[:100])
        self.closed_by = "server-close %d" % code
        self.alive = False
        # Let the client answer the close, then cut.
        threading.Timer(0.5, self._cut).start()

    def drop(self):
        """Ends the TCP connection without a close frame."""
        if not self.alive:
            return
        self.closed_by = "server-drop"
        self.alive = False
        self._cut()

    def _cut(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- reading ----
    def _read_frame(self):
        while True:
            b = self.buf
            if len(b) >= 2:
                n = b[1] & 0x7F
                pos = 2
                if n == 126 and len(b) >= 4:
                    n = struct.unpack("!H", b[2:4])[0]
                    pos = 4
                elif n == 127 and len(b) >= 10:
                    n = struct.unpack("!Q", b[2:10])[0]
                    pos = 10
                elif n >= 126:
                    n = None
                if n is not None:
                    masked = b[1] & 0x80
                    if len(b) >= pos + (4 if masked else 0) + n:
                        key = b[pos:pos + 4] if masked else None
                        pos += 4 if masked else 0
                        payload = b[pos:pos + n]
                        self.buf = b[pos + n:]
                        if key:
                            payload = bytes(x ^ key[i % 4] for i, x in enumerate(payload))
                        return b[0] & 0x80, b[0] & 0x0F, payload, bool(masked)
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def serve(self):
        mock = self.mock
        with mock.lock:
            self.hello_at = time.time()
            self.send_json({"op": 10, "s": None, "t": None,
                            "d": {"heartbeat_interval": mock.heartbeat_ms}})
        msg = b""
        try:
            while True:
                f = self._read_frame()
                if f is None:
                    break
                fin, op, payload, masked = f
                if not masked:
                    mock.errors.append("unmasked frame from the client")
                if op == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    self.client_code = code
                    with mock.lock:
                        if self.closed_by is None:
                            self.closed_by = "client-close %s" % code
                        if code in (1000, 1001) and self.session:
                            self.session["valid"] = False  # as Discord does
                        if self.alive:
                            self._frame(0x8, payload[:2])
                        self.alive = False
                    break
                if op == 0x9:
                    with mock.lock:
                        self._frame(0xA, payload)
                    continue
                if op == 0xA:
                    continue
                msg += payload
                if not fin:
                    continue
                data, msg = msg, b""
                try:
                    obj = json.loads(data.decode())
                except ValueError:
                    mock.errors.append("not JSON: %r" % data[:100])
                    continue
                if len(data) > 4096:
                    mock.errors.append("payload over 4096 bytes")
                mock._on_payload(self, obj)
        except OSError:
            pass
        with mock.lock:
            if self.closed_by is None:
                self.closed_by = "client-eof"
            self.alive = False
            self.closed = time.time()
            if mock.current is self:
                mock.current = None
        self._cut()


# ---- the mock ---------------------------------------------------------------------

class DiscordMock:
    def __init__(self, token, heartbeat_ms=500, bot_id=BOT_ID):
        self.token = token
        self.heartbeat_ms = heartbeat_ms
        self.bot_id = bot_id
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.reqs = []          # every REST request: dict(method, path, body, headers, t, status)
        self.sent = []          # accepted create-message calls (see _create_message)
        self.deleted = []       # accepted deletes: dict(channel_id, message_id, t)
        self.dm_opens = []      # POST /users/@me/channels bodies
        self.conns = []         # every gateway connection (WsConn), in order
        self.sessions = {}      # session_id -> {"id", "seq", "events", "valid"}
        self.current = None     # the connection dispatches go to
        self.session = None     # the session the test dispatches into
        self.acks = True
        self.revoked = False
        self.identify_close = None   # close every Identify with this code
        self.identify_left = 1000
        self.rate_rules = []    # [route regex, count, retry_after, global]
        self.buckets = {}       # channel id -> {"limit", "window", "start", "used"}
        self.bucket_429s = []   # (path, time) of each 429 an empty bucket gave
        self.holds = {}         # route regex ("*": global) -> (since, until) of the 429 hold
        self.violations = []
        self.refuse_dm = set()  # user ids whose DM channel refuses messages (50007)
        self.drop_after = None  # drop the connection after this many more dispatches
        self.errors = []        # protocol mistakes of the client
        self.nonces = {}        # nonce -> message
        self.next_id = 1200000000000000000
        self.http = None
        self.gw = None

    # ---- life cycle ----
    def start(self):
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                mock._rest(self)

            def do_POST(self):
                mock._rest(self)

            def do_DELETE(self):
                mock._rest(self)

            def do_PATCH(self):
                mock._rest(self)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.gw = socket.socket()
        self.gw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.gw.bind(("127.0.0.1", 0))
        self.gw.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        try:
            self.http.shutdown()
            self.http.server_close()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.gw.close()
        except OSError:
            pass
        with self.lock:
            for c in self.conns:
                c.drop()

    @property
    def api_url(self):
        return "http://127.0.0.1:%d/api/v10" % self.http.server_address[1]

    @property
    def gateway_url(self):
        return "ws://127.0.0.1:%d" % self.gw.getsockname()[1]

    def _new_id(self):
        with self.lock:
            self.next_id += 1
            return str(self.next_id)

    # ---- gateway ----
    def _accept(self):
        while True:
            try:
                sock, _ = self.gw.accept()
            except OSError:
                return
            threading.Thread(target=self._handshake, args=(sock,), daemon=True).start()

    def _handshake(self, sock):
        sock.settimeout(None)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    sock.close()
                    return
                data += chunk
                if len(data) > 16384:
                    sock.close()
                    return
        except OSError:
            return
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        path = parts[1] if len(parts) > 1 else ""
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        key = headers.get("sec-websocket-key")
        if not key or q.get("v") != ["10"] or q.get("encoding") != ["json"]:
            self.errors.append("bad gateway handshake: %s" % path)
            sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            sock.close()
            return
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
        c = WsConn(self, sock, path, headers)
        c.buf = rest
        with self.lock:
            self.conns.append(c)
            self.cond.notify_all()
        c.serve()
        with self.lock:
            self.cond.notify_all()

    def _ready_payload(self, sess, seq):
        return {"op": 0, "t": "READY", "s": seq,
                "d": {"v": 10, "user": {"id": self.bot_id, "username": BOT_NAME, "bot": True,
                                        "discriminator": "0"},
                      "guilds": [{"id": GUILD, "unavailable": True}],
                      "session_id": sess["id"], "resume_gateway_url": self.gateway_url + "/resume",
                      "application": {"id": self.bot_id, "flags": 0}}}

    def _on_payload(self, c, obj):
        op = obj.get("op")
        d = obj.get("d")
        with self.lock:
            if op == 1:
                c.heartbeats.append((time.time(), d))
                if self.acks and c.alive:
                    c.send_json({"op": 11})
                self.cond.notify_all()
            elif op == 2:
                c.identify = d
                if (c.session is not None or not isinstance(d, dict)
                        or d.get("token") != self.token or self.revoked):
                    c.close_with(4004 if not c.session else 4005, "Authentication failed.")
                elif self.identify_close:
                    c.close_with(self.identify_close, "Disallowed intent(s).")
                else:
                    self.identify_left -= 1
                    sid = "s%x" % (int(time.time() * 1000000) & 0xffffffffff)
                    sess = {"id": sid, "seq": 0, "events": [], "valid": True}
                    self.sessions[sid] = sess
                    sess["seq"] += 1
                    c.send_json(self._ready_payload(sess, sess["seq"]))
                    c.session = sess
                    c.ready = time.time()
                    self.session = sess
                    self.current = c
                self.cond.notify_all()
            elif op == 6:
                c.resume = d
                sess = self.sessions.get(d.get("session_id")) if isinstance(d, dict) else None
                if not isinstance(d, dict) or d.get("token") != self.token or self.revoked:
                    c.close_with(4004, "Authentication failed.")
                elif not sess or not sess["valid"] or not isinstance(d.get("seq"), int):
                    c.send_json({"op": 9, "d": False})
                else:
                    for ev in sess["events"]:
                        if ev["s"] > d["seq"]:
                            c.send_json(ev)
                    sess["seq"] += 1
                    c.send_json({"op": 0, "t": "RESUMED", "s": sess["seq"], "d": {}})
                    c.session = sess
                    c.ready = time.time()
                    self.session = sess
                    self.current = c
                self.cond.notify_all()
            else:
                self.errors.append("unexpected op %r" % op)

    # ---- what the test does: gateway ----
    def dispatch(self, t, d):
        """One event into the current session (sent now when a connection is
        attached, else replayed on Resume); returns its seq."""
        with self.lock:
            sess = self.session
            if sess is None:
                raise RuntimeError("no session yet")
            sess["seq"] += 1
            ev = {"op": 0, "t": t, "s": sess["seq"], "d": d}
            sess["events"].append(ev)
            c = self.current
            if c and c.alive and c.session is sess:
                c.send_json(ev)
                c.sent_events += 1
                c.last_seq = ev["s"]
                if self.drop_after is not None:
                    self.drop_after -= 1
                    if self.drop_after <= 0:
                        self.drop_after = None
                        c.drop()
                        self.current = None
            return sess["seq"]

    def message(self, content, channel_id, user_id, guild_id=GUILD, username=None,
                bot=None, msg_id=None, thread=False, extra=None):
        """Dispatches a MESSAGE_CREATE; guild_id=None makes it a DM (and lifts
        a DM refusal for that user, who now wrote to the bot).  Returns d."""
        d = {"id": msg_id or self._new_id(), "channel_id": channel_id,
             "author": {"id": user_id, "username": username or "user%s" % user_id[-4:],
                        "global_name": None, "discriminator": "0", "avatar": None},
             "content": content, "timestamp": "2026-11-23T10:00:00.000000+00:00",
             "edited_timestamp": None, "tts": False, "mention_everyone": False,
             "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
             "pinned": False, "type": 0}
        if bot is not None:
            d["author"]["bot"] = bot
        if guild_id:
            d["guild_id"] = guild_id
            d["channel_type"] = 11 if thread else 0
            d["member"] = {"nick": None, "roles": []}
        else:
            d["channel_type"] = 1
            with self.lock:
                self.refuse_dm.discard(user_id)
        d.update(extra or {})
        self.dispatch("MESSAGE_CREATE", d)
        return d

    def send_raw(self, text):
        """Any text frame to the current connection (for malformed input)."""
        with self.lock:
            if self.current:
                self.current._frame(0x1, text.encode() if isinstance(text, str) else text)

    def send_op(self, op, d=None):
        with self.lock:
            if self.current:
                self.current.send_json({"op": op, "d": d})

    def drop(self):
        with self.lock:
            if self.current:
                self.current.drop()
                self.current = None

    def close_current(self, code, reason=""):
        with self.lock:
            if self.current:
                self.current.close_with(code, reason)
                self.current = None

    def revoke(self):
        """The token was reset: REST answers 401, the gateway closes with 4004."""
        with self.lock:
            self.revoked = True
            self.close_current(4004, "Authentication failed.")

    def dm_channel(self, user_id):
        return str(800000000000000000 + int(user_id) % 10**15)

    # ---- what the test reads ----
    def wait(self, pred, timeout=10.0):
        end = time.time() + timeout
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = end - time.time()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.05))

    def wait_sent(self, pred, timeout=10.0):
        def f():
            for m in self.sent:
                if pred(m):
                    return m
            return None
        return self.wait(f, timeout)

    def replies_to(self, message_id):
        with self.lock:
            return [m for m in self.sent if m["reply_to"] == message_id]

    def sent_to(self, channel_id):
        with self.lock:
            return [m for m in self.sent if m["channel_id"] == channel_id]

    def ready_conns(self):
        with self.lock:
            return [c for c in self.conns if c.ready]

    def requests(self, method=None, path_re=None):
        with self.lock:
            return [r for r in self.reqs if (method is None or r["method"] == method)
                    and (path_re is None or re.fullmatch(path_re, r["path"]))]

    # ---- REST ----
    def rate_limit(self, count, retry_after, global_=False, route=r"/channels/[0-9]+/messages"):
        """The next `count` requests matching route get a 429."""
        with self.lock:
            self.rate_rules.append([route, count, retry_after, global_])

    def bucket(self, channel_id, limit, window):
        """Create-message in channel_id gets a bucket of `limit` requests
        per `window` seconds, announced as Discord does (X-RateLimit-*
        headers on every answer); a request into an empty bucket is 429."""
        with self.lock:
            self.buckets[channel_id] = {"limit": limit, "window": window, "start": 0.0, "used": 0}

    def _bucket_headers(self, channel_id, b, now):
        left = b["start"] + b["window"] - now
        return {"X-RateLimit-Limit": str(b["limit"]),
                "X-RateLimit-Remaining": str(max(b["limit"] - b["used"], 0)),
                "X-RateLimit-Reset": "%.3f" % (b["start"] + b["window"]),
                "X-RateLimit-Reset-After": "%.3f" % max(left, 0.0),
                "X-RateLimit-Bucket": "mock-%s" % channel_id}

    def _reply(self, h, status, obj=None, headers=None):
        body = b"" if obj is None else json.dumps(obj).encode()
        h.send_response(status)
        if obj is not None:
            h.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body:
            h.wfile.write(body)

    def _rest(self, h):
        now = time.time()
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n else b""
        path = urllib.parse.urlsplit(h.path).path
        rec = {"method": h.command, "path": path, "raw": raw, "body": None,
               "headers": {k.lower(): v for k, v in h.headers.items()}, "t": now, "status": None}
        status, obj, hdrs = self._route(h.command, path, raw, rec, now)
        rec["status"] = status
        with self.lock:
            self.reqs.append(rec)
            self.cond.notify_all()
        self._reply(h, status, obj, hdrs)

    def _route(self, method, path, raw, rec, now):
        if not path.startswith("/api/v10/"):
            return 404, {"message": "404: Not Found", "code": 0}, None
        p = path[len("/api/v10"):]
        with self.lock:
            if rec["headers"].get("authorization") != "Bot " + self.token or self.revoked:
                return 401, {"message": "401: Unauthorized", "code": 0}, None
            if raw:
                try:
                    rec["body"] = json.loads(raw.decode())
                except ValueError:
                    return 400, {"message": "400: Bad Request", "code": 50109}, None
                if not rec["headers"].get("content-type", "").startswith("application/json"):
                    return 400, {"message": "wrong content type", "code": 50035}, None
            # Limits in force: a request inside one is a violation, unless
            # it was already under way when the 429 went out (GRACE).
            for route, (since, until) in self.holds.items():
                if since + GRACE < now < until - 0.005 and (route == "*" or re.fullmatch(route, p)):
                    self.violations.append((p, route, until - now))
            for rule in self.rate_rules:
                if rule[1] > 0 and re.fullmatch(rule[0], p):
                    rule[1] -= 1
                    ra, glob = rule[2], rule[3]
                    key = "*" if glob else re.escape(p)
                    # `since` is the latest 429: requests that arrive within
                    # GRACE of it were sent before the client could know.
                    old = self.holds.get(key, (now, 0))
                    self.holds[key] = (now, max(old[1], now + ra))
                    rec["retry_after"] = ra
                    rec["global"] = glob
                    hdrs = {"Retry-After": str(int(math.ceil(ra))),
                            "X-RateLimit-Scope": "global" if glob else "user"}
                    if glob:
                        hdrs["X-RateLimit-Global"] = "true"
                    return 429, {"message": "You are being rate limited.", "retry_after": ra,
                                 "global": glob}, hdrs
            body = rec["body"]
            if method == "GET" and p == "/gateway/bot":
                return 200, {"url": self.gateway_url, "shards": 1,
                             "session_start_limit": {"total": 1000, "remaining": self.identify_left,
                                                     "reset_after": 3600000, "max_concurrency": 1}}, None
            if method == "GET" and p == "/users/@me":
                return 200, {"id": self.bot_id, "username": BOT_NAME, "bot": True}, None
            if method == "POST" and p == "/users/@me/channels":
                if not isinstance(body, dict) or not snowflake_ok(body.get("recipient_id")):
                    return 400, {"message": "Invalid Form Body", "code": 50035}, None
                self.dm_opens.append(body)
                uid = body["recipient_id"]
                return 200, {"id": self.dm_channel(uid), "type": 1,
                             "recipients": [{"id": uid, "username": "user"}]}, None
            m = re.fullmatch(r"/channels/([0-9]+)/messages", p)
            if m and method == "POST":
                b = self.buckets.get(m.group(1))
                if b is None:
                    return self._create_message(m.group(1), body, now)
                if now >= b["start"] + b["window"]:
                    b["start"], b["used"] = now, 0
                if b["used"] >= b["limit"]:
                    ra = round(b["start"] + b["window"] - now, 3)
                    self.bucket_429s.append((p, now))
                    hdrs = self._bucket_headers(m.group(1), b, now)
                    hdrs.update({"Retry-After": str(int(math.ceil(ra))), "X-RateLimit-Scope": "user"})
                    return 429, {"message": "You are being rate limited.", "retry_after": ra,
                                 "global": False}, hdrs
                b["used"] += 1
                status, obj, hdrs = self._create_message(m.group(1), body, now)
                return status, obj, dict(hdrs or {}, **self._bucket_headers(m.group(1), b, now))
            m = re.fullmatch(r"/channels/([0-9]+)/messages/([0-9]+)", p)
            if m and method == "DELETE":
                if m.group(1) == "999":
                    return 403, {"message": "Missing Permissions", "code": 50013}, None
                self.deleted.append({"channel_id": m.group(1), "message_id": m.group(2), "t": now})
                return 204, None, None
            return 404, {"message": "404: Not Found", "code": 0}, None

    def _create_message(self, channel_id, body, now):
        if not isinstance(body, dict):
            return 400, {"message": "Cannot send an empty message", "code": 50006}, None
        content = body.get("content")
        if not isinstance(content, str) or not content.strip():
            return 400, {"message": "Cannot send an empty message", "code": 50006}, None
        if len(content) > 2000:
            return 400, {"message": "Invalid Form Body", "code": 50035}, None
        for uid in self.refuse_dm:
            if channel_id == self.dm_channel(uid):
                return 403, {"message": "Cannot send messages to this user", "code": 50007}, None
        nonce = body.get("nonce")
        if nonce is not None and (not isinstance(nonce, (str, int)) or len(str(nonce)) > 25):
            return 400, {"message": "Invalid Form Body", "code": 50035}, None
        if body.get("enforce_nonce") and nonce in self.nonces:
            return 200, self.nonces[nonce]["reply"], None
        ref = body.get("message_reference")
        if ref is not None and not (isinstance(ref, dict) and snowflake_ok(ref.get("message_id"))):
            return 400, {"message": "Invalid Form Body", "code": 50035}, None
        self.next_id += 1
        msg = {"id": str(self.next_id), "channel_id": channel_id, "content": content,
               "author": {"id": self.bot_id, "username": BOT_NAME, "bot": True}, "type": 19 if ref else 0}
        rec = {"channel_id": channel_id, "content": content, "nonce": nonce,
               "reply_to": ref.get("message_id") if ref else None, "reference": ref,
               "allowed_mentions": body.get("allowed_mentions"), "t": now, "reply": msg,
               "body": body}
        if nonce is not None:
            self.nonces[nonce] = rec
        self.sent.append(rec)
        return 200, msg, None
