"""mattermost_mock - a small Mattermost server for frontdesk's tests.

Serves, on 127.0.0.1 (random port) in a thread of the test process, the
REST calls the plugin makes under /api/v4 (users/me, config/client,
users/me/channels, channels/{id}/posts?since=, posts, channels/direct,
DELETE posts/{id}, users/ids) and the websocket at /api/v4/websocket, with
a minimal RFC 6455 server of its own (text frames, close, ping/pong).
Python 3 standard library only.

Every REST call must carry "Authorization: Bearer <token>" (else 401, as
Mattermost answers).  The websocket authenticates by that header on the
upgrade or, when the header is missing (or `header_auth` is off, like a
proxy that drops it), by an authentication_challenge frame.  A fresh
connection gets a `hello` (seq 0) with a new connection_id; events carry
increasing `seq`.  Like the real server, a reconnect with
?connection_id=<id>&sequence_number=<n> of a session it still has replays
the events from n on without a hello (set `resume = False`, or call
forget_sessions(), to behave like a restarted server: new hello, events of
the gap lost, only the REST API knows the posts).

The test creates users and channels, posts as users (user_post), reads the
bot's posts and every request, and programs misbehaviour: fail() (e.g. 429
with Retry-After and X-Ratelimit-*), drop_after() / drop_now() (the TCP
connection cut without a close frame, mid-stream), forbid_dm(),
forbid_delete, no_user_channels (a server before 6.1).
"""
import base64
import hashlib
import json
import os
import random
import socket
import string
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
ALPHABET = string.ascii_lowercase + string.digits


def new_id():
    return "".join(random.choice(ALPHABET) for _ in range(26))


def _err(id_, message, status):
    return {"id": id_, "message": message, "detailed_error": "", "request_id": new_id(),
            "status_code": status}


class _Session:
    """The server's queue of events for one websocket session."""

    def __init__(self):
        self.id = new_id()
        self.seq = 0          # seq of the next event
        self.events = []      # [(seq, text)], oldest first


class _WsConn:
    """One websocket connection (server side)."""

    def __init__(self, mock, sock, rfile, authed, session, send_from):
        self.mock = mock
        self.sock = sock
        self.rfile = rfile
        self.authed = authed
        self.session = session
        self.send_from = send_from   # seq of the next event to write
        self.lock = threading.Lock()
        self.closed = False
        self.sent_events = 0

    # ---- frames ----
    def send_text(self, text):
        data = text.encode()
        n = len(data)
        head = bytes([0x81])
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack("!H", n)
        else:
            head += bytes([127]) + struct.pack("!Q", n)
        with self.lock:
            if self.closed:
                return False
            try:
                self.sock.sendall(head + data)
                return True
            except OSError:
                self.closed = True
                return False

    def send_control(self, op, payload=b""):
        with self.lock:
            if self.closed:
                return
            try:
                self.sock.sendall(bytes([0x80 | op, len(payload)]) + payload)
            except OSError:
                self.closed = True

    def read_frame(self):
        """(opcode, payload) of one whole message, None at EOF."""
        data = b""
        op0 = None
        while True:
            h = self.rfile.read(2)
            if len(h) < 2:
                return None
            fin, op = h[0] & 0x80, h[0] & 0x0F
            n = h[1] & 0x7F
            if n == 126:
                ext = self.rfile.read(2)
                if len(ext) < 2:
                    return None
                n = struct.unpack("!H", ext)[0]
            elif n == 127:
                ext = self.rfile.read(8)
                if len(ext) < 8:
                    return None
                n = struct.unpack("!Q", ext)[0]
            key = self.rfile.read(4) if h[1] & 0x80 else None
            payload = self.rfile.read(n) if n else b""
            if len(payload) < n:
                return None
            if key:
                payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            if op >= 0x8:          # control frames may come between fragments
                if op == 0x9:
                    self.send_control(0xA, payload)
                    continue
                if op == 0xA:
                    continue
                return op, payload
            if op != 0:
                op0 = op
            data += payload
            if fin:
                return op0, data

    def cut(self):
        """Drops the TCP connection without a close frame."""
        with self.lock:
            self.closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ---- the writer: the session's events in seq order, once authed ----
    def writer(self):
        m = self.mock
        while True:
            with m.cond:
                while not self.closed and not m.closing and (
                        not self.authed or not self.session.events or
                        self.session.events[-1][0] < self.send_from):
                    m.cond.wait(0.5)
                if self.closed or m.closing:
                    return
                batch = [(s, e) for s, e in self.session.events if s >= self.send_from]
            for s, e in batch:
                with m.cond:
                    if m.drop_after_n is not None and m.drop_after_n <= 0:
                        m.drop_after_n = None
                        m.drops += 1
                        m.cond.notify_all()
                        self.cut()
                        return
                    skip = m.skip_next and s > 0
                    if skip:
                        m.skip_next = False
                        m.skipped.append(s)
                if not skip and not self.send_text(e):
                    return
                self.send_from = s + 1
                with m.cond:
                    self.sent_events += 1
                    if m.drop_after_n is not None:
                        m.drop_after_n -= 1


class MattermostMock:
    def __init__(self, token, bot_name="frontdesk", max_post_size="16383", port=0,
                 version="9.11.0"):
        self.token = token
        self.want_port = port
        self.version = version
        self.cond = threading.Condition()
        self.bot_id = new_id()
        self.bot_name = bot_name
        self.max_post_size = max_post_size
        self.team_id = new_id()
        self.users = {self.bot_id: {"id": self.bot_id, "username": bot_name, "first_name": "",
                                    "last_name": "", "nickname": "", "is_bot": True}}
        self.channels = {}       # id -> {"id", "type", "name", "display_name", "members", ...}
        self.posts = {}          # id -> post
        self.reqs = []           # (method, path, query, headers, body, time)
        self.failures = []       # [method, path prefix, status, count, retry_after]
        self.forbidden_dm = set()
        self.forbid_delete = False
        self.no_user_channels = False
        self.header_auth = True  # False: ignore the Authorization header on upgrades
        self.resume = True       # honour connection_id + sequence_number
        self.dead_queue = 128    # events kept for a resume (Mattermost: 128)
        self.session = None      # the bot's current session
        self.sessions = {}       # id -> _Session
        self.conns = []          # every _WsConn, in order
        self.ws_requests = []    # (path with query, headers) of every upgrade
        self.actions = []        # client frames (parsed JSON)
        self.drop_after_n = None
        self.drops = 0
        self.skip_next = False   # lose the next event on the wire (not in the queue)
        self.skipped = []        # seqs lost that way
        self.hellos = 0          # new sessions started
        self.resumed = 0         # reconnects that resumed a session
        self.last_ms = 0
        self.closing = False
        self.server = None

    # ---- life cycle -----------------------------------------------------
    def start(self):
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                mock._handle(self, "GET")

            def do_POST(self):
                mock._handle(self, "POST")

            def do_DELETE(self):
                mock._handle(self, "DELETE")

            def do_PUT(self):
                mock._handle(self, "PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.want_port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        with self.cond:
            self.closing = True
            conns = list(self.conns)
            self.cond.notify_all()
        for c in conns:
            c.cut()
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def port(self):
        return self.server.server_address[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # ---- the world --------------------------------------------------------
    def now_ms(self):
        """Strictly increasing milliseconds, so posts have an order."""
        with self.cond:
            ms = max(int(time.time() * 1000), self.last_ms + 1)
            self.last_ms = ms
            return ms

    def add_user(self, username, first_name="", last_name="", is_bot=False):
        uid = new_id()
        with self.cond:
            self.users[uid] = {"id": uid, "username": username, "first_name": first_name,
                               "last_name": last_name, "nickname": "", "is_bot": is_bot}
        return uid

    def add_channel(self, name, type_="O", members=()):
        cid = new_id()
        with self.cond:
            self.channels[cid] = {"id": cid, "type": type_, "name": name, "display_name": name,
                                  "team_id": self.team_id if type_ in "OP" else "",
                                  "members": set(members) | {self.bot_id},
                                  "last_post_at": 0, "delete_at": 0}
        return cid

    def _direct_name(self, a, b):
        return "__".join(sorted([a, b]))

    def dm_channel(self, user_id):
        """The direct channel between user_id and the bot (made when missing)."""
        name = self._direct_name(self.bot_id, user_id)
        with self.cond:
            for c in self.channels.values():
                if c["type"] == "D" and c["name"] == name:
                    return c["id"]
            cid = new_id()
            self.channels[cid] = {"id": cid, "type": "D", "name": name, "display_name": "",
                                  "team_id": "", "members": {self.bot_id, user_id},
                                  "last_post_at": 0, "delete_at": 0}
            return cid

    def _post_obj(self, channel_id, user_id, message, root_id="", type_="", props=None):
        ms = self.now_ms()
        return {"id": new_id(), "create_at": ms, "update_at": ms, "edit_at": 0, "delete_at": 0,
                "is_pinned": False, "user_id": user_id, "channel_id": channel_id,
                "root_id": root_id, "original_id": "", "message": message, "type": type_,
                "props": props or {}, "hashtags": "", "pending_post_id": "", "reply_count": 0,
                "metadata": {}}

    def _store_post(self, p):
        with self.cond:
            self.posts[p["id"]] = p
            ch = self.channels.get(p["channel_id"])
            if ch:
                ch["last_post_at"] = max(ch["last_post_at"], p["create_at"])
            self.cond.notify_all()

    def posted_event(self, p, sender=None):
        ch = self.channels.get(p["channel_id"], {})
        u = self.users.get(p["user_id"], {})
        data = {"channel_display_name": ch.get("display_name", ""),
                "channel_name": ch.get("name", ""), "channel_type": ch.get("type", "O"),
                "post": json.dumps(p), "sender_name": sender or "@" + u.get("username", "?"),
                "set_online": True, "team_id": ch.get("team_id", "")}
        return {"event": "posted", "data": data,
                "broadcast": {"omit_users": None, "user_id": "", "channel_id": p["channel_id"],
                              "team_id": ""}}

    def user_post(self, channel_id, user_id, message, root_id="", type_="", props=None,
                  broadcast=True, sender=None):
        """A user posts: stored (REST sees it) and sent as a `posted` event."""
        p = self._post_obj(channel_id, user_id, message, root_id, type_, props)
        self._store_post(p)
        if broadcast:
            self.broadcast(self.posted_event(p, sender))
        return p

    def broadcast(self, event):
        """Queues an event (any dict; seq is set here) for the bot's session."""
        with self.cond:
            s = self.session
            if s is None:
                return None   # nobody connected, no session: lost, as on a server
            ev = dict(event, seq=s.seq)
            s.seq += 1
            s.events.append((ev["seq"], json.dumps(ev)))
            if len(s.events) > self.dead_queue:
                del s.events[:len(s.events) - self.dead_queue]
            self.cond.notify_all()
            return ev["seq"]

    def broadcast_raw(self, text):
        """Sends any text frame (no seq bookkeeping) on the live connection."""
        with self.cond:
            c = self.conns[-1] if self.conns else None
        if c and not c.closed:
            c.send_text(text)

    # ---- what the test reads ------------------------------------------------
    def bot_posts(self, channel_id=None):
        with self.cond:
            return sorted([p for p in self.posts.values() if p["user_id"] == self.bot_id and
                           (channel_id is None or p["channel_id"] == channel_id)],
                          key=lambda p: p["create_at"])

    def replies_to(self, post_id):
        """Bot posts in the thread rooted at post_id."""
        return [p for p in self.bot_posts() if p["root_id"] == post_id]

    def wait_bot_post(self, pred, timeout=10.0):
        end = time.time() + timeout
        with self.cond:
            while True:
                for p in sorted(self.posts.values(), key=lambda p: p["create_at"]):
                    if p["user_id"] == self.bot_id and pred(p):
                        return p
                left = end - time.time()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def requests(self, method=None, prefix=None):
        with self.cond:
            return [r for r in self.reqs if (method is None or r[0] == method) and
                    (prefix is None or r[1].startswith(prefix))]

    def wait_request(self, method, prefix, timeout=10.0, pred=None):
        end = time.time() + timeout
        with self.cond:
            while True:
                for r in self.reqs:
                    if r[0] == method and r[1].startswith(prefix) and (pred is None or pred(r)):
                        return r
                left = end - time.time()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def live_conn(self):
        with self.cond:
            for c in reversed(self.conns):
                if not c.closed and c.authed:
                    return c
        return None

    def wait_live(self, n_conns=None, timeout=10.0):
        """Waits for an authenticated, open connection (the n-th, if given)."""
        end = time.time() + timeout
        with self.cond:
            while True:
                c = self.conns[-1] if self.conns else None
                if c and not c.closed and c.authed and (n_conns is None or
                                                        len(self.conns) >= n_conns):
                    return c
                left = end - time.time()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.2))

    # ---- misbehaviour ---------------------------------------------------------
    def fail(self, method, prefix, status, count=1, retry_after=None, reset=None):
        """The next count requests get status; a 429 carries Retry-After
        when retry_after is set, and X-Ratelimit-Reset: reset (default:
        retry_after, else 1)."""
        with self.cond:
            self.failures.append([method, prefix, status, count, retry_after, reset])

    def forbid_dm(self, user_id, forbid=True):
        with self.cond:
            (self.forbidden_dm.add if forbid else self.forbidden_dm.discard)(user_id)

    def drop_after(self, n):
        """Cuts the live connection after n more events were written."""
        with self.cond:
            self.drop_after_n = n
            self.cond.notify_all()

    def drop_now(self):
        c = self.live_conn()
        if c:
            c.cut()

    def lose_next_event(self):
        """The next event is not written (as if a frame got lost), though the
        server keeps it: the client sees a gap in seq."""
        with self.cond:
            self.skip_next = True

    def forget_sessions(self):
        """Like a server restart: no session can be resumed."""
        with self.cond:
            self.sessions.clear()
            self.session = None

    # ---- HTTP ---------------------------------------------------------------
    def _send(self, h, status, obj, headers=None):
        data = json.dumps(obj).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send_text(self, h, status, text, headers=None):
        data = text.encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "text/plain; charset=utf-8")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _authorized(self, h):
        return h.headers.get("Authorization") == "Bearer " + self.token

    def _handle(self, h, method):
        u = urllib.parse.urlsplit(h.path)
        path, query = u.path, dict(urllib.parse.parse_qsl(u.query))
        if method == "GET" and path == "/api/v4/websocket" and \
                (h.headers.get("Upgrade") or "").lower() == "websocket":
            return self._websocket(h, u)
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n > 0 else b""
        body = None
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                with self.cond:
                    self.reqs.append((method, path, query, dict(h.headers), raw, time.time()))
                    self.cond.notify_all()
                return self._send(h, 400, _err("api.context.invalid_body_param.app_error",
                                               "Invalid or missing body", 400))
        with self.cond:
            self.reqs.append((method, path, query, dict(h.headers), body, time.time()))
            self.cond.notify_all()
        if not self._authorized(h):
            return self._send(h, 401, _err("api.context.session_expired.app_error",
                                           "Invalid or expired session, please login again.", 401))
        with self.cond:
            fail = None
            for f in self.failures:
                if f[0] == method and path.startswith(f[1]) and f[3] > 0:
                    f[3] -= 1
                    fail = f
                    break
        if fail:
            status, ra, reset = fail[2], fail[4], fail[5]
            headers = {}
            if status == 429:
                # As Mattermost's limiter (throttled): headers, plain text.
                if reset is None:
                    reset = ra if ra is not None else 1
                headers = {"X-Ratelimit-Limit": "10", "X-Ratelimit-Remaining": "0",
                           "X-Ratelimit-Reset": str(reset)}
                if ra is not None:
                    headers["Retry-After"] = str(ra)
                return self._send_text(h, 429, "limit exceeded\n", headers)
            return self._send(h, status, _err("mock.failure", "Injected failure", status))
        parts = path.split("/")
        try:
            return self._route(h, method, parts, query, body)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            return self._send(h, 400, _err("api.context.invalid_param.app_error", str(e), 400))

    def _route(self, h, method, parts, query, body):
        # parts: ["", "api", "v4", ...]
        if parts[:3] != ["", "api", "v4"]:
            return self._send(h, 404, _err("api.context.404.app_error", "Not found", 404))
        p = parts[3:]
        if method == "GET" and p == ["users", "me"]:
            u = dict(self.users[self.bot_id])
            u.update({"roles": "system_user", "delete_at": 0})
            return self._send(h, 200, u)
        if method == "GET" and p == ["config", "client"]:
            return self._send(h, 200, {"Version": self.version, "MaxPostSize": self.max_post_size,
                                       "SiteName": "Mock"})
        if method == "GET" and p == ["users", "me", "channels"]:
            if self.no_user_channels:
                return self._send(h, 404, _err("api.context.404.app_error", "Not found", 404))
            with self.cond:
                out = [{k: v for k, v in c.items() if k != "members"}
                       for c in self.channels.values() if self.bot_id in c["members"]]
            return self._send(h, 200, out)
        if method == "GET" and len(p) == 3 and p[0] == "channels" and p[2] == "posts":
            with self.cond:
                ch = self.channels.get(p[1])
                if not ch or self.bot_id not in ch["members"]:
                    return self._send(h, 403, _err("api.context.permissions.app_error",
                                                   "You do not have the appropriate permissions.",
                                                   403))
                since = int(query.get("since", "0"))
                ps = [q for q in self.posts.values() if q["channel_id"] == p[1] and
                      q["update_at"] > since]
            ps.sort(key=lambda q: q["create_at"])
            ps = ps[:1000]
            return self._send(h, 200, {"order": [q["id"] for q in reversed(ps)],
                                       "posts": {q["id"]: q for q in ps},
                                       "next_post_id": "", "prev_post_id": ""})
        if method == "POST" and p == ["posts"]:
            return self._create_post(h, body)
        if method == "DELETE" and len(p) == 2 and p[0] == "posts":
            with self.cond:
                q = self.posts.get(p[1])
                if not q or q["delete_at"]:
                    return self._send(h, 404, _err("app.post.get.app_error",
                                                   "Unable to get the post.", 404))
                if self.forbid_delete and q["user_id"] != self.bot_id:
                    return self._send(h, 403, _err("api.context.permissions.app_error",
                                                   "You do not have the appropriate permissions.",
                                                   403))
                ms = self.now_ms()
                q["delete_at"] = ms
                q["update_at"] = ms
                self.cond.notify_all()
            return self._send(h, 200, {"status": "OK"})
        if method == "POST" and p == ["channels", "direct"]:
            if not isinstance(body, list) or len(body) != 2 or \
                    not all(isinstance(x, str) and x in self.users for x in body):
                return self._send(h, 400, _err("api.context.invalid_body_param.app_error",
                                               "Invalid or missing user_ids in request body.", 400))
            if self.bot_id not in body:
                return self._send(h, 403, _err("api.context.permissions.app_error",
                                               "You do not have the appropriate permissions.",
                                               403))
            other = body[0] if body[1] == self.bot_id else body[1]
            if other in self.forbidden_dm:
                return self._send(h, 403, _err("api.channel.create_direct_channel.restricted",
                                               "You do not have the appropriate permissions.",
                                               403))
            cid = self.dm_channel(other)
            c = {k: v for k, v in self.channels[cid].items() if k != "members"}
            return self._send(h, 201, c)
        if method == "POST" and p == ["users", "ids"]:
            if not isinstance(body, list):
                raise ValueError("user ids")
            with self.cond:
                out = [dict(self.users[i]) for i in body if isinstance(i, str) and i in self.users]
            return self._send(h, 200, out)
        return self._send(h, 404, _err("api.context.404.app_error",
                                       "Sorry, we could not find the page.", 404))

    def _create_post(self, h, body):
        if not isinstance(body, dict):
            raise ValueError("post")
        cid, msg = body.get("channel_id"), body.get("message")
        root = body.get("root_id") or ""
        with self.cond:
            ch = self.channels.get(cid)
            if not ch or self.bot_id not in ch["members"]:
                return self._send(h, 403, _err("api.context.permissions.app_error",
                                               "You do not have the appropriate permissions.", 403))
            if not isinstance(msg, str) or not msg:
                return self._send(h, 400, _err("api.post.create_post.message.app_error",
                                               "Message is empty", 400))
            if len(msg) > int(self.max_post_size):   # runes = code points
                return self._send(h, 400, _err("model.post.is_valid.message_length.app_error",
                                               "Invalid Message property for post.", 400))
            if root:
                r = self.posts.get(root)
                if not r or r["delete_at"] or r["channel_id"] != cid:
                    return self._send(h, 400, _err("api.post.create_post.root_id.app_error",
                                                   "Invalid RootId parameter.", 400))
            pend = body.get("pending_post_id") or ""
            if pend:
                for q in self.posts.values():
                    if q.get("pending_post_id") == pend:
                        return self._send(h, 201, q)   # the server's dedupe
        p = self._post_obj(cid, self.bot_id, msg, root, "", {"from_bot": "true"})
        p["pending_post_id"] = body.get("pending_post_id") or ""
        self._store_post(p)
        # The bot hears its own posts, as on a real server.
        self.broadcast(self.posted_event(p))
        return self._send(h, 201, p)

    # ---- websocket ---------------------------------------------------------
    def _websocket(self, h, u):
        key = h.headers.get("Sec-WebSocket-Key")
        query = dict(urllib.parse.parse_qsl(u.query))
        with self.cond:
            self.ws_requests.append((h.path, dict(h.headers)))
            self.cond.notify_all()
        if not key:
            return self._send(h, 400, _err("api.web_socket.connect.upgrade.app_error",
                                           "Failed to upgrade websocket connection.", 400))
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        h.send_response(101)
        h.send_header("Upgrade", "websocket")
        h.send_header("Connection", "Upgrade")
        h.send_header("Sec-WebSocket-Accept", accept)
        h.end_headers()
        h.wfile.flush()
        h.close_connection = True
        authed = self.header_auth and self._authorized(h)
        with self.cond:
            session, send_from = self._session_for(query)
            conn = _WsConn(self, h.connection, h.rfile, authed, session, send_from)
            self.conns.append(conn)
            self.cond.notify_all()
        threading.Thread(target=conn.writer, daemon=True).start()
        try:
            self._reader(conn)
        finally:
            with self.cond:
                conn.closed = True
                if not self.resume and self.session is conn.session:
                    self.sessions.pop(conn.session.id, None)
                    self.session = None
                self.cond.notify_all()

    def _session_for(self, query):
        """(session, first seq to send) for a new connection: the session it
        resumes, or a new one whose first event is the hello."""
        cid, seq = query.get("connection_id"), query.get("sequence_number")
        s = self.sessions.get(cid) if cid and self.resume else None
        if s is not None and seq is not None and seq.isdigit():
            n = int(seq)
            first = s.events[0][0] if s.events else s.seq
            if first <= n <= s.seq:
                self.session = s
                self.resumed += 1
                return s, n
        s = _Session()
        self.sessions[s.id] = s
        self.session = s
        hello = {"event": "hello", "data": {"connection_id": s.id,
                                            "server_version": self.version,
                                            "server_hostname": "mock"},
                 "broadcast": {"omit_users": None, "user_id": self.bot_id,
                               "channel_id": "", "team_id": ""}, "seq": 0}
        s.events.append((0, json.dumps(hello)))
        s.seq = 1
        self.hellos += 1
        return s, 0

    def _reader(self, conn):
        while not self.closing:
            try:
                f = conn.read_frame()
            except (OSError, ValueError):
                return
            if f is None:
                return
            op, data = f
            if op == 0x8:
                conn.send_control(0x8, data[:2])
                conn.cut()
                return
            if op != 0x1:
                continue
            try:
                msg = json.loads(data.decode())
            except (ValueError, UnicodeDecodeError):
                continue
            with self.cond:
                self.actions.append(msg)
                self.cond.notify_all()
            if not isinstance(msg, dict):
                continue
            action, seq = msg.get("action"), msg.get("seq")
            if action == "authentication_challenge":
                if conn.authed:
                    continue   # the server ignores it then
                tok = (msg.get("data") or {}).get("token")
                if tok != self.token:
                    conn.cut()
                    return
                conn.send_text(json.dumps({"status": "OK", "seq_reply": seq}))
                with self.cond:
                    conn.authed = True
                    self.cond.notify_all()
            elif not conn.authed:
                conn.send_text(json.dumps({"status": "FAIL", "seq_reply": seq, "error": {
                    "id": "api.web_socket_router.not_authenticated.app_error"}}))
            elif action == "ping":
                conn.send_text(json.dumps({"status": "OK", "seq_reply": seq, "data": {
                    "text": "pong", "version": self.version,
                    "server_time": int(time.time() * 1000), "node_id": ""}}))
            else:
                conn.send_text(json.dumps({"status": "FAIL", "seq_reply": seq, "error": {
                    "id": "api.web_socket_router.bad_action.app_error"}}))


if __name__ == "__main__":
    import sys
    m = MattermostMock(sys.argv[1] if len(sys.argv) > 1 else "mocktoken").start()
    print(m.url, m.bot_id, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        m.stop()
