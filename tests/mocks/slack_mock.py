"""slack_mock - a small Slack (Web API + Socket Mode) for frontdesk's tests.

One SlackMock is one Slack app in one workspace, on 127.0.0.1 (random
ports), in threads of the test process.  Python 3 standard library only.

Web API at <url>/api/<method> (the channel's api_url is mock.api_url):
    auth.test               bot token -> user_id, bot_id, team_id
    apps.connections.open   app token -> {"ok":true,"url":"ws://.../link/?ticket=..."}
    chat.postMessage        bot token, JSON {channel, text, thread_ts?}
    conversations.open      bot token, JSON {users} -> {"channel":{"id":"D..."}}
Every request is recorded (mock.requests) and checked like Slack would
(token, content type, fields); whatever is wrong lands in mock.problems,
which a test expects to stay empty.  mock.fail(method, ...) programs 429
(with Retry-After) or {"ok": false} answers; a retry that comes before the
Retry-After it was given is counted in mock.early_retries.

Socket Mode: a websocket server (RFC 6455, written here) behind the URLs
apps.connections.open hands out.  Tickets are single-use.  A connection gets
{"type":"hello"}; mock.push(payload) wraps an Events API payload into an
envelope and sends it on the newest connection; acks ({"envelope_id"}) are
recorded; envelopes not acked when a connection goes away are sent again
(retry_attempt + 1) on the next one, as Slack does.  Programmable:
drop() (cut the TCP connection), disconnect(reason), close_with(code),
freeze() (no more reading, no pongs: a dead peer), lose_acks(n) (acks of
the next n envelopes are ignored, so they come again), and per URL handed
out: next_urls (e.g. a closed port), ws_mode ("refuse" with HTTP 403,
"hang" in the handshake, "silent": no hello).  An optional TLS listener
(wss://) serves the same with a given certificate.

    mock = SlackMock().start()
    mock.push(mock.message("hello", channel="C1", user="U1"))
    mock.wait_posts(lambda p: p["channel"] == "C1")
    mock.stop()
"""
import base64
import hashlib
import hmac
import itertools
import json
import os
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BOT_USER = "U0BOT0001"
BOT_ID = "B0BOT0001"
TEAM = "T0TEAM001"


def sign(secret, ts, body):
    """X-Slack-Signature for body (bytes) at timestamp ts (str)."""
    base = b"v0:" + ts.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class WSConn:
    """One server-side websocket connection of the mock."""

    def __init__(self, mock, sock, ticket, handshake):
        self.mock = mock
        self.sock = sock
        self.ticket = ticket
        self.handshake = handshake  # request headers, lower-cased names
        self.lock = threading.Lock()
        self.open = True
        self.frozen = False
        self.hello_at = None
        self.closed_at = None
        self.client_close = None    # (code, reason) of the client's close frame
        self.sent_envelopes = []    # envelope ids sent on this connection
        self.received = []          # JSON messages from the client
        self.pings = 0              # pings the client sent

    def send_frame(self, opcode, payload, fin=True):
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack("!H", n)
        else:
            head += bytes([127]) + struct.pack("!Q", n)
        with self.lock:
            if not self.open:
                return False
            try:
                self.sock.sendall(head + payload)
                return True
            except OSError:
                return False

    def send_json(self, obj, fragments=1):
        data = json.dumps(obj).encode()
        if fragments <= 1:
            return self.send_frame(0x1, data)
        size = (len(data) + fragments - 1) // fragments
        chunks = [data[i:i + size] for i in range(0, len(data), size)]
        with self.lock:  # fragments of one message must not interleave
            ok = True
            for i, ch in enumerate(chunks):
                op = 0x1 if i == 0 else 0x0
                fin = i == len(chunks) - 1
                head = bytes([(0x80 if fin else 0) | op])
                n = len(ch)
                if n < 126:
                    head += bytes([n])
                elif n < 65536:
                    head += bytes([126]) + struct.pack("!H", n)
                else:
                    head += bytes([127]) + struct.pack("!Q", n)
                try:
                    self.sock.sendall(head + ch)
                except OSError:
                    ok = False
                    break
            return ok

    def kill(self):
        """Cuts the TCP connection without a close frame."""
        with self.lock:
            self.open = False
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                self.sock.close()
            except OSError:
                pass

    def close_with(self, code, reason=b""):
        self.send_frame(0x8, struct.pack("!H", code) + reason)

    def _recv_exact(self, n, buf):
        while len(buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("eof")
            buf += chunk
        return buf

    def run(self, buf):
        """Reads frames until the connection ends."""
        msg = b""
        try:
            while True:
                while self.frozen:
                    time.sleep(0.05)
                    if not self.open:
                        raise ConnectionError("killed")
                buf = self._recv_exact(2, buf)
                b0, b1 = buf[0], buf[1]
                n = b1 & 0x7F
                pos = 2
                if n == 126:
                    buf = self._recv_exact(4, buf)
                    n = struct.unpack("!H", buf[2:4])[0]
                    pos = 4
                elif n == 127:
                    buf = self._recv_exact(10, buf)
                    n = struct.unpack("!Q", buf[2:10])[0]
                    pos = 10
                masked = bool(b1 & 0x80)
                if not masked:
                    self.mock._problem("client frame not masked")
                buf = self._recv_exact(pos + (4 if masked else 0) + n, buf)
                key = buf[pos:pos + 4] if masked else None
                pos += 4 if masked else 0
                payload = buf[pos:pos + n]
                buf = buf[pos + n:]
                if key:
                    payload = bytes(x ^ key[i % 4] for i, x in enumerate(payload))
                op = b0 & 0x0F
                if self.frozen:
                    continue
                if op == 0x9:
                    self.pings += 1
                    self.send_frame(0xA, payload)
                    continue
                if op == 0xA:
                    continue
                if op == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    self.client_close = (code, payload[2:].decode(errors="replace"))
                    self.send_frame(0x8, payload[:2])
                    break
                msg += payload
                if not (b0 & 0x80):
                    continue
                data, msg = msg, b""
                try:
                    obj = json.loads(data.decode())
                except ValueError:
                    self.mock._problem("client sent a frame that is not JSON: %r" % data[:80])
                    continue
                self.received.append(obj)
                self.mock._on_client_message(self, obj)
        except (OSError, ConnectionError, ValueError):
            pass
        finally:
            with self.lock:
                self.open = False
                try:
                    self.sock.close()
                except OSError:
                    pass
            self.closed_at = time.time()
            self.mock._on_ws_closed(self)


class SlackMock:
    def __init__(self, bot_token="xoxb-1111-2222-botsecret", app_token="xapp-1-A0APP-3333-appsecret",
                 bot_user=BOT_USER, bot_id=BOT_ID, team=TEAM, tls_cert=None, tls_key=None):
        self.bot_token = bot_token
        self.app_token = app_token
        self.bot_user = bot_user
        self.bot_id = bot_id
        self.team = team
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.cond = threading.Condition()
        self.requests = []       # (method, headers, params, time, status)
        self.problems = []       # what Slack would have refused
        self.posts = []          # accepted chat.postMessage params (+ "ts")
        self.opens = []          # accepted conversations.open params
        self.failures = []       # [method, status, retry_after, count, error]
        self.rate_limited = []   # (method, key, time, retry_after) of each 429 served
        self.early_retries = []  # calls that came before their Retry-After
        self.tickets = {}        # ticket -> {"used": bool, "mode": str}
        self.next_urls = []      # URLs apps.connections.open hands out first
        self.ws_mode = []        # modes for the next tickets: normal/refuse/hang/silent
        self.use_tls = False     # hand out wss:// URLs
        self.ws_host = "127.0.0.1"  # the host name in the URLs handed out
        self.conns = []          # every WSConn, in order
        self.current = None      # the newest connection that got hello
        self.envelopes = {}      # envelope_id -> {"payload", "acked", "attempt", "sent_on"}
        self.env_order = []      # envelope ids in push order
        self.redeliver = []      # envelope ids waiting for the next connection
        self.acks = []           # (envelope_id, time)
        self.ignore_acks = 0     # acks of the next n envelopes sent are lost
        self.lost = {}           # envelope id -> connection whose ack is ignored
        self.hangers = []        # sockets held open in "hang" mode
        self.refused_tickets = []  # tickets refused (unknown or used twice)
        self.dm_channels = set() # DM channels the bot may post to
        self.counter = itertools.count(1)
        self.ts_counter = itertools.count(1)
        self.closing = False
        self.http = None
        self.ws_sock = None
        self.tls_sock = None

    # ---- life cycle -----------------------------------------------------
    def start(self):
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                mock._handle_http(self)

            def do_GET(self):
                mock._handle_http(self)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.ws_sock = self._listen()
        threading.Thread(target=self._accept_loop, args=(self.ws_sock, None), daemon=True).start()
        if self.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
            self.tls_sock = self._listen()
            threading.Thread(target=self._accept_loop, args=(self.tls_sock, ctx),
                             daemon=True).start()
        return self

    def _listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        return s

    def stop(self):
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        for c in list(self.conns):
            c.kill()
        for s in self.hangers:
            try:
                s.close()
            except OSError:
                pass
        for s in (self.ws_sock, self.tls_sock):
            if s:
                try:
                    s.close()
                except OSError:
                    pass
        if self.http:
            self.http.shutdown()
            self.http.server_close()

    @property
    def api_url(self):
        return "http://127.0.0.1:%d/api" % self.http.server_address[1]

    @property
    def ws_port(self):
        return self.ws_sock.getsockname()[1]

    @property
    def tls_port(self):
        return self.tls_sock.getsockname()[1]

    # ---- the Web API ----------------------------------------------------
    def fail(self, method, status=429, retry_after=1, count=1, error=None):
        """The next `count` calls of method get `status` (429 with
        Retry-After: retry_after) or, with status 200, {"ok":false,"error"}."""
        with self.cond:
            self.failures.append([method, status, retry_after, count, error])

    def _problem(self, what):
        with self.cond:
            self.problems.append(what)

    def _reply(self, h, status, obj, headers=None):
        body = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def _handle_http(self, h):
        now = time.time()
        path = urllib.parse.urlsplit(h.path).path
        method = path[len("/api/"):] if path.startswith("/api/") else path
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        ctype = headers.get("content-type", "")
        params = {}
        if raw and ctype.startswith("application/json"):
            try:
                params = json.loads(raw.decode())
            except ValueError:
                self._problem("%s: body is not JSON" % method)
        elif raw:
            params = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        if h.command != "POST":
            self._problem("%s: %s instead of POST" % (method, h.command))
        status, obj, extra = self._answer(method, headers, ctype, params, now)
        with self.cond:
            self.requests.append((method, headers, params, now, status))
            self.cond.notify_all()
        self._reply(h, status, obj, extra)

    def _key(self, method, params):
        return params.get("channel") if method == "chat.postMessage" else method

    def _answer(self, method, headers, ctype, params, now):
        auth = headers.get("authorization", "")
        want = self.app_token if method == "apps.connections.open" else self.bot_token
        if auth != "Bearer " + want:
            self._problem("%s: Authorization %r" % (method, auth[:20] + "..."))
            return 200, {"ok": False, "error": "invalid_auth"}, None
        key = self._key(method, params)
        with self.cond:
            # A call before the Retry-After it was given is an early retry.
            for (m, k, t, ra) in self.rate_limited:
                if m == method and k == key and t <= now < t + ra - 0.05:
                    self.early_retries.append((method, key, now - t, ra))
            for f in self.failures:
                if f[0] == method and f[3] > 0:
                    f[3] -= 1
                    if f[1] == 429:
                        self.rate_limited.append((method, key, now, f[2]))
                        return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(f[2])}
                    if f[1] == 200:
                        return 200, {"ok": False, "error": f[4] or "internal_error"}, None
                    return f[1], {"ok": False, "error": f[4] or "server_error"}, None
        if method == "auth.test":
            return 200, {"ok": True, "url": "https://mock.slack.test/", "team": "Mock",
                         "user": "frontdesk", "team_id": self.team, "user_id": self.bot_user,
                         "bot_id": self.bot_id, "is_enterprise_install": False}, None
        if method == "apps.connections.open":
            return 200, {"ok": True, "url": self._new_url()}, None
        if method == "chat.postMessage":
            if not ctype.startswith("application/json"):
                self._problem("chat.postMessage: content type %r" % ctype)
            ch, text = params.get("channel"), params.get("text")
            if not isinstance(ch, str) or not ch:
                self._problem("chat.postMessage without channel: %r" % params)
                return 200, {"ok": False, "error": "channel_not_found"}, None
            if not isinstance(text, str) or not text:
                self._problem("chat.postMessage without text: %r" % params)
                return 200, {"ok": False, "error": "no_text"}, None
            tts = params.get("thread_ts")
            if tts is not None and (not isinstance(tts, str) or "." not in tts):
                self._problem("chat.postMessage: bad thread_ts %r" % tts)
            # A DM channel must come from conversations.open, or from a
            # message in that DM.
            if ch.startswith("D") and ch not in self.dm_channels:
                self._problem("chat.postMessage to unknown DM channel %s" % ch)
            ts = "1700000000.%06d" % next(self.ts_counter)
            p = dict(params, ts=ts)
            with self.cond:
                self.posts.append(p)
                self.cond.notify_all()
            return 200, {"ok": True, "channel": ch, "ts": ts,
                         "message": {"text": text, "user": self.bot_user, "bot_id": self.bot_id,
                                     "ts": ts}}, None
        if method == "conversations.open":
            if not ctype.startswith("application/json"):
                self._problem("conversations.open: content type %r" % ctype)
            users = params.get("users")
            if not isinstance(users, str) or not users or "," in users:
                self._problem("conversations.open: users %r" % users)
                return 200, {"ok": False, "error": "users_list_not_supplied"}, None
            with self.cond:
                self.opens.append(params)
                self.dm_channels.add("D" + users)
            return 200, {"ok": True, "channel": {"id": "D" + users}}, None
        self._problem("unknown method %s" % method)
        return 404, {"ok": False, "error": "unknown_method"}, None

    # ---- Socket Mode: URLs and the websocket server -----------------------
    def _new_url(self):
        with self.cond:
            if self.next_urls:
                return self.next_urls.pop(0)
            ticket = base64.urlsafe_b64encode(os.urandom(12)).decode().rstrip("=")
            mode = self.ws_mode.pop(0) if self.ws_mode else "normal"
            self.tickets[ticket] = {"used": False, "mode": mode}
        if self.use_tls:
            return "wss://%s:%d/link/?ticket=%s&app_id=A0APP" % (self.ws_host, self.tls_port, ticket)
        return "ws://%s:%d/link/?ticket=%s&app_id=A0APP" % (self.ws_host, self.ws_port, ticket)

    def _accept_loop(self, lsock, tls_ctx):
        while not self.closing:
            try:
                s, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s, tls_ctx), daemon=True).start()

    def _serve(self, s, tls_ctx):
        try:
            if tls_ctx:
                s.settimeout(10)
                s = tls_ctx.wrap_socket(s, server_side=True)
            s.settimeout(10)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    s.close()
                    return
                buf += chunk
                if len(buf) > 65536:
                    s.close()
                    return
        except (OSError, ssl.SSLError):
            try:
                s.close()
            except OSError:
                pass
            return
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode(errors="replace").split("\r\n")
        reqline = lines[0].split(" ")
        hdrs = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        target = reqline[1] if len(reqline) > 1 else ""
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
        ticket = (q.get("ticket") or [""])[0]
        with self.cond:
            t = self.tickets.get(ticket)
            valid = t is not None and not t["used"]
            if t is not None:
                t["used"] = True
            mode = t["mode"] if t else "normal"
        if mode == "hang":
            self.hangers.append(s)  # never answered; closed at stop()
            return
        if not valid or mode == "refuse" or hdrs.get("upgrade", "").lower() != "websocket" \
                or "sec-websocket-key" not in hdrs:
            if not valid:
                self._note_refused(ticket)
            try:
                s.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                s.close()
            except OSError:
                pass
            return
        accept = base64.b64encode(hashlib.sha1((hdrs["sec-websocket-key"] + GUID).encode()).digest())
        try:
            s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            s.settimeout(None)
        except OSError:
            return
        c = WSConn(self, s, ticket, hdrs)
        with self.cond:
            self.conns.append(c)
            self.cond.notify_all()
        if mode != "silent":
            self._hello(c)
        c.run(rest)

    def _note_refused(self, ticket):
        with self.cond:
            self.refused_tickets.append(ticket)

    def _hello(self, c):
        with self.cond:
            c.hello_at = time.time()
            c.send_json({"type": "hello", "num_connections": sum(1 for x in self.conns if x.open),
                         "debug_info": {"host": "mock", "build_number": 1,
                                        "approximate_connection_time": 18060},
                         "connection_info": {"app_id": "A0APP"}})
            self.current = c
            again, self.redeliver = self.redeliver, []
            self.cond.notify_all()
        for eid in again:
            self._send_envelope(eid, c)

    def _send_envelope(self, eid, c, fragments=1):
        with self.cond:
            e = self.envelopes[eid]
            if e["sent_on"] is not None:
                e["attempt"] += 1
            e["sent_on"] = c
            c.sent_envelopes.append(eid)
            self.lost.pop(eid, None)  # only a first delivery's ack gets lost
            if self.ignore_acks > 0 and e["attempt"] == 0:
                self.ignore_acks -= 1
                self.lost[eid] = c
            env = {"envelope_id": eid, "type": "events_api", "payload": e["payload"],
                   "accepts_response_payload": False, "retry_attempt": e["attempt"],
                   "retry_reason": "timeout" if e["attempt"] else ""}
        if not c.send_json(env, fragments):
            with self.cond:  # the connection is going: next one
                if eid not in self.redeliver and not e["acked"]:
                    self.redeliver.append(eid)

    def _on_client_message(self, c, obj):
        eid = obj.get("envelope_id") if isinstance(obj, dict) else None
        if not eid:
            self._problem("client sent %r" % obj)
            return
        with self.cond:
            e = self.envelopes.get(eid)
            if e is None:
                self.problems.append("ack of an unknown envelope %r" % eid)
                return
            if self.lost.get(eid) is c:
                del self.lost[eid]  # this ack "got lost": sent again later
                return
            if set(obj) - {"envelope_id", "payload"}:
                self.problems.append("ack with extra fields %r" % obj)
            e["acked"] = True
            self.acks.append((eid, time.time()))
            self.cond.notify_all()

    def _on_ws_closed(self, c):
        with self.cond:
            for eid in c.sent_envelopes:
                e = self.envelopes[eid]
                if not e["acked"] and e["sent_on"] is c and eid not in self.redeliver:
                    self.redeliver.append(eid)
            if self.current is c:
                self.current = None
            self.cond.notify_all()
        # Envelopes waiting while another connection is up go there now.
        cur = self.current
        if cur is not None and cur.open:
            with self.cond:
                again, self.redeliver = self.redeliver, []
            for eid in again:
                self._send_envelope(eid, cur)

    # ---- what the test does -------------------------------------------------
    def message(self, text, channel="C0PUBLIC1", user="U0USER001", channel_type="channel",
                ts=None, thread_ts=None, event_type="message", subtype=None, bot_id=None,
                event_id=None, profile=None):
        """An Events API payload (event_callback) for one message."""
        n = next(self.counter)
        ev = {"type": event_type, "channel": channel, "user": user, "text": text,
              "ts": ts or "1690000000.%06d" % n, "event_ts": ts or "1690000000.%06d" % n}
        if event_type == "message":
            ev["channel_type"] = channel_type
        if channel_type == "im":
            with self.cond:
                self.dm_channels.add(channel)
        if thread_ts:
            ev["thread_ts"] = thread_ts
        if subtype:
            ev["subtype"] = subtype
        if bot_id:
            ev["bot_id"] = bot_id
        if profile:
            ev["user_profile"] = profile
        return {"token": "legacy-verification-token", "team_id": self.team, "api_app_id": "A0APP",
                "event": ev, "type": "event_callback", "event_id": event_id or "Ev%08d" % n,
                "event_time": int(time.time()),
                "authorizations": [{"team_id": self.team, "user_id": self.bot_user,
                                    "is_bot": True, "is_enterprise_install": False}]}

    def push(self, payload, fragments=1, etype="events_api"):
        """Sends payload as a new envelope on the current connection (or
        queues it for the next one); returns the envelope id."""
        eid = "env-%d-%s" % (next(self.counter), base64.b16encode(os.urandom(4)).decode().lower())
        with self.cond:
            self.envelopes[eid] = {"payload": payload, "acked": False, "attempt": 0,
                                   "sent_on": None, "type": etype}
            self.env_order.append(eid)
            c = self.current
            if c is None or not c.open:
                self.redeliver.append(eid)
                return eid
        self._send_envelope(eid, c, fragments)
        return eid

    def push_raw(self, obj):
        """Any JSON frame on the current connection."""
        c = self.current
        return c is not None and c.send_json(obj)

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
                self.cond.wait(min(left, 0.2))

    def wait_posts(self, pred, n=1, timeout=10.0):
        """The first n posts satisfying pred (a list), or None."""
        def got():
            m = [p for p in self.posts if pred(p)]
            return m if len(m) >= n else None
        return self.wait(got, timeout)

    def wait_connected(self, after=0, timeout=15.0):
        """A connection that got hello after index `after` of conns."""
        return self.wait(lambda: next((c for c in self.conns[after:]
                                       if c.hello_at and c.open and c is self.current), None),
                         timeout)

    def calls(self, method):
        with self.cond:
            return [r for r in self.requests if r[0] == method]

    def drop(self):
        """Cuts the current connection (no close frame)."""
        c = self.current
        if c:
            c.kill()
        return c

    def disconnect(self, reason="refresh_requested"):
        c = self.current
        if c:
            c.send_json({"type": "disconnect", "reason": reason,
                         "debug_info": {"host": "mock"}})
        return c

    def freeze(self):
        """The current connection goes silent: no reading, no pongs."""
        c = self.current
        if c:
            c.frozen = True
        return c

    def lose_acks(self, n):
        with self.cond:
            self.ignore_acks = n

    def unacked(self):
        with self.cond:
            return [eid for eid in self.env_order if not self.envelopes[eid]["acked"]]
