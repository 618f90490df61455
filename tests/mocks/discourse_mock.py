"""discourse_mock - a small Discourse REST API for frontdesk's tests, plus
helpers that build and sign Discourse webhook deliveries.

Serves, on 127.0.0.1 (random port), in a thread of the test process:

    GET    /session/current.json   the bot user
    POST   /posts.json             reply in a topic (topic_id, raw,
                                   reply_to_post_number) or a new private
                                   message (title, raw, archetype,
                                   target_recipients)
    POST   /post_actions.json      a flag (id, post_action_type_id, take_action)
    DELETE /posts/<id>.json        delete a post
    GET    /t/<id>.json            a topic with details.allowed_users

Every request is checked the way Discourse would refuse it: Api-Key and
Api-Username must match (else 403), JSON bodies must be JSON with the right
field types (else 400/422), raw longer than max_post_length is 422.  Each
problem is also recorded in `problems`, so a test can assert there were
none.  Failures can be programmed (fail_next): 429 with Retry-After and/or
extras.wait_seconds, 5xx, anything; answers can be held back (delay).

With echo(url, secret) set, every post the bot makes is sent back as a
signed post_created webhook, the way a real forum reports the bot's own
posts.  Python 3 standard library only.
"""
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOT_ID = 900
BOT_NAME = "SupportBot"


def sign(secret, body):
    """The X-Discourse-Event-Signature value for body (bytes)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_payload(post_id, topic_id, post_number, username, user_id, raw,
                 private=False, name=None, post_type=1, reply_to=None, **extra):
    """A post_created body in WebHookPostSerializer's shape (bytes)."""
    post = {
        "id": post_id, "name": name if name is not None else username.title(),
        "username": username, "avatar_template": "/user_avatar/x/%s/{size}/1.png" % username,
        "created_at": "2026-11-23T10:19:46.324Z", "cooked": "<p>%s</p>" % raw,
        "post_number": post_number, "post_type": post_type,
        "updated_at": "2026-11-23T10:19:46.324Z", "reply_count": 0,
        "reply_to_post_number": reply_to, "quote_count": 0, "incoming_link_count": 0,
        "reads": 1, "score": 0, "topic_id": topic_id,
        "topic_slug": "topic-%d" % topic_id, "topic_title": "Topic %d" % topic_id,
        "category_id": None if private else 7, "display_username": username,
        "primary_group_name": None, "version": 1, "user_title": None,
        "bookmarked": False, "raw": raw, "moderator": False, "admin": False,
        "staff": False, "user_id": user_id, "hidden": False, "trust_level": 1,
        "deleted_at": None, "user_deleted": False, "edit_reason": None, "wiki": False,
        "reviewable_id": None, "reviewable_score_count": 0,
        "reviewable_score_pending_count": 0, "topic_posts_count": post_number,
        "topic_filtered_posts_count": post_number,
        "topic_archetype": "private_message" if private else "regular",
        "category_slug": None if private else "support",
    }
    if raw is None:
        del post["raw"]
    post.update(extra)
    # Discourse's encoder writes UTF-8 as is (no \u escapes); sign those bytes.
    return json.dumps({"post": post}, ensure_ascii=False).encode()


def hook_headers(body, secret, event="post_created", event_id=1, event_type=None,
                 signature=None):
    """The headers of one webhook delivery (signature None: correct one)."""
    h = {
        "Content-Type": "application/json",
        "User-Agent": "Discourse/3.4.0",
        "X-Discourse-Instance": "https://forum.example",
        "X-Discourse-Event-Id": str(event_id),
        "X-Discourse-Event-Type": event_type or event.split("_")[0],
        "X-Discourse-Event": event,
    }
    if signature is not False:
        h["X-Discourse-Event-Signature"] = signature or sign(secret, body)
    return h


class DiscourseMock:
    def __init__(self, api_key, username=BOT_NAME, bot_id=BOT_ID, moderator=True,
                 max_post_length=32000):
        self.api_key = api_key
        self.username = username
        self.bot_id = bot_id
        self.moderator = moderator
        self.max_post_length = max_post_length
        self.lock = threading.Condition()
        self.reqs = []        # dicts: method, path, headers, body (parsed), time
        self.posts = []       # every post the bot made (dicts as answered)
        self.flags = []       # bodies of accepted post_actions
        self.deleted = []     # post ids deleted
        self.problems = []    # what a real Discourse would have refused
        self.failures = []    # [method, path regex, status, headers, body, count]
        self.delays = []      # [method, path regex, seconds]: answer that late
        self.topics = {}      # topic id -> {"archetype", "users": [names], "last": n}
        self.next_post = 50000
        self.next_topic = 7000
        self.echo_url = None
        self.echo_secret = None
        self.echo_results = []
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    # ---- what the test programs -------------------------------------------
    def echo(self, url, secret):
        """Report the bot's own posts back to url as signed webhooks."""
        self.echo_url, self.echo_secret = url, secret

    def fail_next(self, method, path_re, status, headers=None, body=None, count=1):
        with self.lock:
            self.failures.append([method, re.compile(path_re), status, headers or {},
                                  body, count])

    def delay(self, method, path_re, seconds):
        """Requests matching are answered only after `seconds`."""
        with self.lock:
            self.delays.append([method, re.compile(path_re), seconds])

    def delete_topic(self, topic_id):
        """The topic is gone: posts into it are 404, as after a deletion."""
        with self.lock:
            self.topics.setdefault(topic_id, {"archetype": "regular", "users": [], "last": 0})
            self.topics[topic_id]["deleted"] = True

    def add_topic(self, topic_id, users, archetype="private_message"):
        with self.lock:
            self.topics[topic_id] = {"archetype": archetype, "users": list(users),
                                     "last": 1}

    # ---- what the test reads ----------------------------------------------
    def requests(self, method=None, path=None):
        with self.lock:
            return [r for r in self.reqs if (method is None or r["method"] == method)
                    and (path is None or r["path"] == path)]

    def wait(self, pred, timeout=10.0):
        """Waits until pred() (called under the lock) returns something true."""
        end = time.time() + timeout
        with self.lock:
            while True:
                v = pred()
                if v:
                    return v
                left = end - time.time()
                if left <= 0:
                    return None
                self.lock.wait(left)

    def wait_post(self, pred, timeout=10.0):
        return self.wait(lambda: next((p for p in self.posts if pred(p)), None), timeout)

    def posts_where(self, pred):
        with self.lock:
            return [p for p in self.posts if pred(p)]

    # ---- the server -----------------------------------------------------------
    def _problem(self, what):
        self.problems.append(what)

    def _reply(self, h, status, obj=None, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(obj if obj is not None else {}).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, str(v))
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h, method):
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n else b""
        path = h.path.split("?", 1)[0]
        body = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                bad_json = True
        with self.lock:
            self.reqs.append({"method": method, "path": path, "headers": dict(h.headers),
                              "body": body, "raw": raw, "time": time.time()})
            self.lock.notify_all()
            late = max([dl[2] for dl in self.delays if dl[0] == method and dl[1].match(path)],
                       default=0)
        if late:
            time.sleep(late)
        with self.lock:
            status, obj, hdrs, echo = self._route(h, method, path, body, raw, bad_json)
            self.lock.notify_all()
        if isinstance(obj, bytes):
            self._reply(h, status, headers=hdrs, raw=obj)
        else:
            self._reply(h, status, obj, hdrs)
        if echo is not None and self.echo_url:
            threading.Thread(target=self._echo, args=(echo,), daemon=True).start()

    def _route(self, h, method, path, body, raw, bad_json):
        """Runs under the lock; returns (status, object, headers, echo post)."""
        if h.headers.get("Api-Key") != self.api_key:
            self._problem("%s %s: wrong Api-Key" % (method, path))
            return 403, {"errors": ["You are not permitted to view the requested resource."],
                         "error_type": "invalid_access"}, None, None
        if h.headers.get("Api-Username") != self.username:
            self._problem("%s %s: wrong Api-Username %r" % (method, path,
                                                             h.headers.get("Api-Username")))
            return 403, {"errors": ["invalid_access"], "error_type": "invalid_access"}, None, None
        for f in self.failures:
            if f[5] > 0 and f[0] == method and f[1].match(path):
                f[5] -= 1
                return f[2], f[4] if f[4] is not None else {}, f[3], None
        if method in ("POST", "PUT"):
            if bad_json or not isinstance(body, dict):
                self._problem("%s %s: body is not a JSON object" % (method, path))
                return 400, {"errors": ["bad request"]}, None, None
            ct = h.headers.get("Content-Type", "")
            if not ct.startswith("application/json"):
                self._problem("%s %s: Content-Type %r" % (method, path, ct))
        if method == "GET" and path == "/session/current.json":
            return 200, {"current_user": {"id": self.bot_id, "username": self.username,
                                          "name": "Support Bot", "moderator": self.moderator,
                                          "admin": False}}, None, None
        if method == "POST" and path == "/posts.json":
            return self._create_post(body)
        if method == "POST" and path == "/post_actions.json":
            ok = (isinstance(body.get("id"), int) and body.get("post_action_type_id") in (3, 4, 8)
                  and body.get("take_action") == "true")
            if not ok:
                self._problem("post_actions: bad body %r" % body)
                return 400, {"errors": ["param is missing or the value is empty"]}, None, None
            if not self.moderator:
                return 403, {"errors": ["You are not permitted to view the requested resource."],
                             "error_type": "invalid_access"}, None, None
            self.flags.append(body)
            return 200, {"id": body["id"], "hidden": True}, None, None
        m = re.fullmatch(r"/posts/(\d+)\.json", path)
        if method == "DELETE" and m:
            if not self.moderator:
                return 403, {"errors": ["invalid_access"]}, None, None
            self.deleted.append(int(m.group(1)))
            return 200, {}, None, None
        m = re.fullmatch(r"/t/(\d+)\.json", path)
        if method == "GET" and m:
            t = self.topics.get(int(m.group(1)))
            if not t:
                return 404, {"errors": ["The requested URL or resource could not be found."],
                             "error_type": "not_found"}, None, None
            return 200, {"id": int(m.group(1)), "archetype": t["archetype"],
                         "details": {"allowed_users": [
                             {"id": (self.bot_id if u == self.username else 100 + i),
                              "username": u} for i, u in enumerate(t["users"])],
                             "allowed_groups": []}}, None, None
        self._problem("%s %s: no such endpoint" % (method, path))
        return 404, {"errors": ["not found"], "error_type": "not_found"}, None, None

    def _create_post(self, b):
        raw = b.get("raw")
        if not isinstance(raw, str) or not raw.strip():
            self._problem("posts.json: no raw")
            return 422, {"errors": ["Body can't be blank"]}, None, None
        if len(raw) > self.max_post_length:  # Ruby String#length: code points
            self._problem("posts.json: raw of %d characters" % len(raw))
            return 422, {"errors": ["Body is limited to %d characters; you entered %d." %
                                    (self.max_post_length, len(raw))]}, None, None
        if b.get("archetype") == "private_message":
            title, to = b.get("title"), b.get("target_recipients")
            if not isinstance(title, str) or len(title) < 2 or not isinstance(to, str) or not to:
                self._problem("posts.json: PM without title or target_recipients: %r" % b)
                return 422, {"errors": ["Title is too short"]}, None, None
            if "topic_id" in b:
                self._problem("posts.json: PM with a topic_id")
            self.next_topic += 1
            topic = self.next_topic
            self.topics[topic] = {"archetype": "private_message",
                                  "users": [self.username] + to.split(","), "last": 0}
        else:
            topic = b.get("topic_id")
            if not isinstance(topic, int):
                self._problem("posts.json: topic_id %r" % (topic,))
                return 422, {"errors": ["topic_id missing"]}, None, None
            rt = b.get("reply_to_post_number")
            if rt is not None and not isinstance(rt, int):
                self._problem("posts.json: reply_to_post_number %r" % (rt,))
            self.topics.setdefault(topic, {"archetype": "regular", "users": [], "last": 100})
            if self.topics[topic].get("deleted"):
                return 404, {"errors": ["The requested URL or resource could not be found."],
                             "error_type": "not_found"}, None, None
        t = self.topics[topic]
        t["last"] += 1
        self.next_post += 1
        post = {"id": self.next_post, "topic_id": topic, "post_number": t["last"],
                "username": self.username, "raw": raw, "post_type": 1,
                "reply_to_post_number": b.get("reply_to_post_number"),
                "archetype": t["archetype"], "title": b.get("title"),
                "target_recipients": b.get("target_recipients"), "time": time.time()}
        self.posts.append(post)
        answer = {"id": post["id"], "name": "Support Bot", "username": self.username,
                  "topic_id": topic, "post_number": post["post_number"], "raw": raw,
                  "cooked": "<p>%s</p>" % raw, "post_type": 1,
                  "reply_to_post_number": post["reply_to_post_number"]}
        return 200, answer, None, post

    def _echo(self, post):
        body = post_payload(post["id"], post["topic_id"], post["post_number"], self.username,
                            self.bot_id, post["raw"],
                            private=post["archetype"] == "private_message")
        req = urllib.request.Request(self.echo_url, data=body, method="POST",
                                     headers=hook_headers(body, self.echo_secret,
                                                          event_id=post["id"]))
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError:
            status = 0
        with self.lock:
            self.echo_results.append((post["id"], status))
            self.lock.notify_all()
