"""graph_mock - one small Meta Graph API for frontdesk's facebook, instagram
and whatsapp tests, plus helpers that build and sign Meta webhook
deliveries the way Meta sends them.

Serves, on 127.0.0.1 (random port), under /<version>, in a thread of the
test process:

    GET  /<id>?fields=...            a Page, Instagram account or phone number
    POST /<comment>/comments         Facebook: answer under a comment {message}
    POST /<comment>/replies          Instagram: answer under a comment {message}
    POST /<comment>                  hide: {is_hidden: true} (Facebook) or
                                     {hide: true} (Instagram)
    POST /<page_id>/messages         Facebook Send API: Private Reply
                                     {recipient: {comment_id}} or a message
                                     {recipient: {id}, messaging_type: RESPONSE}
    POST /me/messages                the same for Instagram (token = account)
    POST /<phone_number_id>/messages WhatsApp: text or template

Every request is checked the way Graph would refuse it: the Bearer token
must belong to the Page/account/number the call acts for (else 190), bodies
must be JSON objects with the documented fields only, texts within each
platform's limit (Messenger 2000 characters, Instagram Direct 1000 bytes,
WhatsApp 4096 characters, comments 8000 / 2200 characters).  Every problem
is also recorded in `problems`, so a test can assert there were none.

Meta's rules are enforced like Graph does: one Private Reply per comment
(10900), private messages only within 24 hours of the user's last message
(Messenger/Instagram 10/2018278, WhatsApp 131047); the test tells the mock
when a user wrote (user_wrote).  Failures can be programmed (fail_next):
any Graph error code on any path, e.g. throttling 4/17/32/613/130429.

With echo(product, url, secret), the Page's own comment answers come back
as feed events (from.id == page id) and sent messages as is_echo messaging
events, signed, the way Meta reports them.  Python 3 standard library only.
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

VERSION = "v21.0"


# ---- webhook deliveries ----------------------------------------------------

def meta_dumps(obj):
    """JSON as Meta sends it: compact, non-ASCII as lower-case \\uXXXX escapes
    (surrogate pairs for emoji), '/' escaped; the signature is over these
    exact bytes."""
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()


def sign(secret, body):
    """The X-Hub-Signature-256 value for body (bytes)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def hook_headers(body, secret, signature=None):
    """Headers of one delivery (signature None: the right one; False: none)."""
    h = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
    if signature is not False:
        h["X-Hub-Signature-256"] = signature or sign(secret, body)
    # The legacy SHA-1 header is sent too; it must not matter.
    h["X-Hub-Signature"] = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return h


def now_ms():
    return int(time.time() * 1000)


def fb_comment(page_id, comment_id, post_id, from_id, from_name, message, verb="add",
               parent_id=None, created_time=None):
    """A Page feed change for a comment (object page)."""
    value = {"from": {"id": from_id, "name": from_name}, "post": {
        "status_type": "added_photos", "is_published": True,
        "updated_time": "2026-11-23T10:00:00+0000",
        "permalink_url": "https://www.facebook.com/%s" % post_id,
        "promotion_status": "inactive", "id": post_id},
        "message": message, "post_id": post_id, "comment_id": comment_id,
        "created_time": created_time or int(time.time()), "item": "comment",
        "parent_id": parent_id or post_id, "verb": verb}
    if message is None:
        del value["message"]
    if from_id is None:
        del value["from"]
    return {"object": "page", "entry": [{"id": page_id, "time": int(time.time()),
                                         "changes": [{"value": value, "field": "feed"}]}]}


def fb_message(page_id, psid, mid, text, ts=None, is_echo=False, attachments=None):
    """A Messenger messaging event (object page)."""
    message = {"mid": mid}
    if text is not None:
        message["text"] = text
    if attachments:
        message["attachments"] = attachments
    if is_echo:
        message["is_echo"] = True
        message["app_id"] = 1517776481860111
        sender, recipient = page_id, psid
    else:
        sender, recipient = psid, page_id
    t = ts if ts is not None else now_ms()
    return {"object": "page", "entry": [{"id": page_id, "time": t, "messaging": [
        {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": t,
         "message": message}]}]}


def ig_comment(account_id, comment_id, media_id, from_id, username, text, parent_id=None):
    """An Instagram comments change (object instagram)."""
    value = {"from": {"id": from_id, "username": username},
             "media": {"id": media_id, "media_product_type": "FEED"},
             "id": comment_id, "text": text}
    if parent_id:
        value["parent_id"] = parent_id
    return {"object": "instagram", "entry": [{"id": account_id, "time": int(time.time()),
                                              "changes": [{"value": value,
                                                           "field": "comments"}]}]}


def ig_message(account_id, igsid, mid, text, ts=None, is_echo=False):
    """An Instagram Direct messaging event (object instagram)."""
    message = {"mid": mid, "text": text}
    if is_echo:
        message["is_echo"] = True
        sender, recipient = account_id, igsid
    else:
        sender, recipient = igsid, account_id
    t = ts if ts is not None else now_ms()
    return {"object": "instagram", "entry": [{"id": account_id, "time": t, "messaging": [
        {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": t,
         "message": message}]}]}


def wa_envelope(waba_id, phone_number_id, value):
    value = dict(value)
    value.setdefault("messaging_product", "whatsapp")
    value["metadata"] = {"display_phone_number": "15550783881",
                         "phone_number_id": phone_number_id}
    return {"object": "whatsapp_business_account", "entry": [
        {"id": waba_id, "changes": [{"value": value, "field": "messages"}]}]}


def wa_message(waba_id, phone_number_id, wa_id, name, wamid, text, ts=None, mtype="text"):
    """A WhatsApp Cloud API messages webhook with one message."""
    msg = {"from": wa_id, "id": wamid, "timestamp": str(ts if ts is not None else int(time.time())),
           "type": mtype}
    if mtype == "text":
        msg["text"] = {"body": text}
    elif mtype == "image":
        msg["image"] = {"mime_type": "image/jpeg", "sha256": "abc", "id": "1234"}
        if text is not None:
            msg["image"]["caption"] = text
    return wa_envelope(waba_id, phone_number_id, {
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [msg]})


def wa_status(waba_id, phone_number_id, wamid, status, recipient, error_code=None):
    """A WhatsApp delivery receipt (statuses)."""
    st = {"id": wamid, "status": status, "timestamp": str(int(time.time())),
          "recipient_id": recipient,
          "conversation": {"id": "c0ffee", "origin": {"type": "service"}},
          "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"}}
    if error_code:
        st["errors"] = [{"code": error_code, "title": "Message failed to send",
                         "message": "Message failed to send",
                         "error_data": {"details": "test failure"}}]
        del st["conversation"], st["pricing"]
    return wa_envelope(waba_id, phone_number_id, {"statuses": [st]})


# ---- the Graph API mock ------------------------------------------------------

def graph_error(code, message, subcode=None, etype="OAuthException", status=400):
    err = {"message": message, "type": etype, "code": code, "fbtrace_id": "AbCdEf123"}
    if subcode:
        err["error_subcode"] = subcode
    return status, {"error": err}


class GraphMock:
    def __init__(self):
        self.lock = threading.Condition()
        self.reqs = []        # every request: method, path, query, headers, body, raw, time
        self.problems = []    # what Graph would have refused or what breaks a rule
        self.failures = []    # [method, path regex, status, body, count, headers]
        self.pages = {}       # facebook page id -> (token, name)
        self.accounts = {}    # instagram account id -> (token, username)
        self.numbers = {}     # whatsapp phone number id -> (token, name)
        self.comments = {}    # comment id -> dict(product, owner, author, replied, hidden)
        self.psids = {}       # (product, owner, author id) -> messaging id
        self.authors = {}     # (product, messaging id) -> author id
        self.wrote = {}       # (product, user messaging id / wa_id) -> unix time
        self.comment_replies = []  # dicts: product, comment, message, id
        self.hidden = []      # comment ids hidden
        self.messages = []    # dicts: product, owner, to, comment_id, text, type, template
        self.next_id = 1000
        self.echo_to = {}     # product -> (url, secret)
        self.echo_results = []
        self.server = None

    # ---- life cycle ---------------------------------------------------------
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
        """The api_url to configure (with the version)."""
        return "http://127.0.0.1:%d/%s" % (self.server.server_address[1], VERSION)

    # ---- what the test programs ---------------------------------------------
    def add_page(self, page_id, token, name="Shop Page"):
        with self.lock:
            self.pages[page_id] = (token, name)

    def add_account(self, account_id, token, username="shop"):
        with self.lock:
            self.accounts[account_id] = (token, username)

    def add_number(self, phone_number_id, token, name="Shop"):
        with self.lock:
            self.numbers[phone_number_id] = (token, name)

    def add_comment(self, product, owner, comment_id, author, replied=False):
        """A comment the test is about to report by webhook; replied=True: it
        already had its private reply (from another tool)."""
        with self.lock:
            self.comments[comment_id] = {"product": product, "owner": owner, "author": author,
                                         "replied": replied, "hidden": False}

    def psid_for(self, product, owner, author):
        """The messaging id Meta gives this commenter (differs from the
        commenter id, as on Facebook)."""
        with self.lock:
            return self._psid(product, owner, author)

    def user_wrote(self, product, user, t=None):
        """The user (messaging id or wa_id) wrote at t (default now): the
        24-hour window as Graph sees it."""
        with self.lock:
            self.wrote[(product, user)] = t if t is not None else time.time()

    def fail_next(self, method, path_re, code, subcode=None, status=400, count=1,
                  message="(#%d) Calls to this api have exceeded the rate limit.",
                  headers=None):
        """The next `count` requests matching get Graph error `code`."""
        st, body = graph_error(code, message % code if "%d" in message else message,
                               subcode, status=status)
        with self.lock:
            self.failures.append([method, re.compile(path_re), st, body, count, headers or {}])

    def echo(self, product, url, secret):
        """Report our own answers back to url as signed webhooks."""
        with self.lock:
            self.echo_to[product] = (url, secret)

    # ---- what the test reads ------------------------------------------------
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

    def wait_message(self, pred, timeout=10.0):
        return self.wait(lambda: next((m for m in self.messages if pred(m)), None), timeout)

    def wait_reply(self, pred, timeout=10.0):
        return self.wait(lambda: next((m for m in self.comment_replies if pred(m)), None),
                         timeout)

    def messages_where(self, pred):
        with self.lock:
            return [m for m in self.messages if pred(m)]

    def replies_where(self, pred):
        with self.lock:
            return [m for m in self.comment_replies if pred(m)]

    # ---- the server -----------------------------------------------------------
    def _problem(self, what):
        self.problems.append(what)

    def _new_id(self):
        self.next_id += 1
        return self.next_id

    def _psid(self, product, owner, author):
        key = (product, owner, author)
        if key not in self.psids:
            psid = str(7700000000000000 + self._new_id())
            self.psids[key] = psid
            self.authors[(product, psid)] = author
        return self.psids[key]

    def _reply(self, h, status, obj, headers=None):
        data = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=UTF-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, str(v))
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h, method):
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n else b""
        path, _, query = h.path.partition("?")
        body, bad_json = None, False
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                bad_json = True
        with self.lock:
            self.reqs.append({"method": method, "path": path, "query": query,
                              "headers": dict(h.headers), "body": body, "raw": raw,
                              "time": time.time()})
            status, obj, hdrs, echo = self._route(h, method, path, query, body, bad_json)
            self.lock.notify_all()
        self._reply(h, status, obj, hdrs)
        if echo:
            threading.Thread(target=self._echo, args=echo, daemon=True).start()

    def _token(self, h):
        a = h.headers.get("Authorization", "")
        return a[7:] if a.startswith("Bearer ") else None

    def _auth(self, h, want, what):
        tok = self._token(h)
        if tok != want:
            self._problem("%s: token %r, want the one of %s" % (h.path, tok and tok[:6], what))
            return graph_error(190, "Invalid OAuth access token - Cannot parse access token")
        if "access_token=" in h.path:
            self._problem("%s: token in the URL" % h.path.split("?")[0])
        return None

    def _route(self, h, method, path, query, body, bad_json):
        """Runs under the lock; returns (status, object, headers, echo args)."""
        prefix = "/" + VERSION + "/"
        if not path.startswith(prefix):
            self._problem("%s %s: not under /%s" % (method, path, VERSION))
            return 404, {"error": {"message": "Unknown path", "code": 100}}, None, None
        rest = path[len(prefix):]
        for f in self.failures:
            if f[4] > 0 and f[0] == method and f[1].fullmatch(rest):
                f[4] -= 1
                return f[2], f[3], f[5], None
        if method == "POST":
            ct = h.headers.get("Content-Type", "")
            if not ct.startswith("application/json"):
                self._problem("%s %s: Content-Type %r" % (method, path, ct))
            if bad_json or not isinstance(body, dict):
                self._problem("%s %s: body is not a JSON object" % (method, path))
                st, b = graph_error(100, "(#100) Invalid parameter")
                return st, b, None, None
        parts = rest.split("/")
        if method == "GET" and len(parts) == 1:
            return self._get_node(h, parts[0], query)
        if method == "POST" and len(parts) == 2 and parts[1] in ("comments", "replies"):
            return self._comment_reply(h, parts[0], parts[1], body)
        if method == "POST" and len(parts) == 2 and parts[1] == "messages":
            if parts[0] in self.numbers:
                return self._wa_send(h, parts[0], body)
            return self._send_api(h, parts[0], body)
        if method == "POST" and len(parts) == 1:
            return self._hide(h, parts[0], body)
        self._problem("%s %s: no such endpoint" % (method, path))
        st, b = graph_error(100, "(#100) Unknown path components")
        return st, b, None, None

    def _get_node(self, h, node, query):
        for table, kind in ((self.pages, "page"), (self.accounts, "account"),
                            (self.numbers, "number")):
            if node in table:
                bad = self._auth(h, table[node][0], "%s %s" % (kind, node))
                if bad:
                    return bad[0], bad[1], None, None
                if not query.startswith("fields="):
                    self._problem("GET %s without fields" % node)
                if kind == "page":
                    return 200, {"id": node, "name": table[node][1]}, None, None
                if kind == "account":
                    return 200, {"id": node, "username": table[node][1]}, None, None
                return 200, {"id": node, "verified_name": table[node][1],
                             "display_phone_number": "+1 555-078-3881"}, None, None
        self._problem("GET %s: unknown node" % node)
        st, b = graph_error(100, "(#100) Object does not exist", 33)
        return st, b, None, None

    def _owner_token(self, c):
        table = self.pages if c["product"] == "facebook" else self.accounts
        return table[c["owner"]][0]

    def _comment_reply(self, h, cid, edge, body):
        c = self.comments.get(cid)
        want_edge = "comments" if c and c["product"] == "facebook" else "replies"
        if not c or edge != want_edge:
            self._problem("POST %s/%s: unknown comment or wrong edge" % (cid, edge))
            st, b = graph_error(100, "(#100) Unsupported post request", 33)
            return st, b, None, None
        bad = self._auth(h, self._owner_token(c), "the owner of comment %s" % cid)
        if bad:
            return bad[0], bad[1], None, None
        msg = body.get("message")
        limit = 8000 if c["product"] == "facebook" else 2200
        if set(body) != {"message"} or not isinstance(msg, str) or not msg:
            self._problem("%s/%s: body %r" % (cid, edge, body))
            st, b = graph_error(100, "(#100) Invalid parameter")
            return st, b, None, None
        if len(msg) > limit:
            self._problem("%s/%s: message of %d characters" % (cid, edge, len(msg)))
            st, b = graph_error(100, "(#100) Message too long")
            return st, b, None, None
        new = "%s_%d" % (cid.split("_")[0], self._new_id())
        self.comment_replies.append({"product": c["product"], "comment": cid, "message": msg,
                                     "id": new, "time": time.time()})
        echo = None
        if c["product"] in self.echo_to:
            if c["product"] == "facebook":
                post = cid.split("_")[0]
                payload = fb_comment(c["owner"], new, "%s_%s" % (c["owner"], post), c["owner"],
                                     "Shop Page", msg, parent_id=cid)
            else:
                payload = ig_comment(c["owner"], str(self._new_id()), "18000000000000001",
                                     c["owner"], "shop", msg, parent_id=cid)
            echo = (c["product"], payload)
        return 200, {"id": new}, None, echo

    def _hide(self, h, cid, body):
        c = self.comments.get(cid)
        if not c:
            self._problem("POST %s: unknown comment" % cid)
            st, b = graph_error(100, "(#100) Object does not exist", 33)
            return st, b, None, None
        bad = self._auth(h, self._owner_token(c), "the owner of comment %s" % cid)
        if bad:
            return bad[0], bad[1], None, None
        field = "is_hidden" if c["product"] == "facebook" else "hide"
        if body != {field: True}:
            self._problem("POST %s: hide body %r, want {%r: true}" % (cid, body, field))
            st, b = graph_error(100, "(#100) Invalid parameter")
            return st, b, None, None
        c["hidden"] = True
        self.hidden.append(cid)
        return 200, {"success": True}, None, None

    def _send_api(self, h, node, body):
        """Messenger (POST /<page_id>/messages) and Instagram (/me/messages)."""
        tok = self._token(h)
        if node == "me":
            owner = next((a for a, v in self.accounts.items() if v[0] == tok), None)
            product = "instagram"
            if owner is None and any(v[0] == tok for v in self.pages.values()):
                self._problem("/me/messages with a Page token: expected an Instagram channel")
        else:
            owner, product = node, "facebook"
            if node not in self.pages:
                self._problem("POST %s/messages: unknown page" % node)
                owner = None
            elif tok != self.pages[node][0]:
                owner = None
        if owner is None:
            self._problem("POST %s/messages: token does not belong to it" % node)
            st, b = graph_error(190, "Invalid OAuth access token")
            return st, b, None, None
        rcp, msg = body.get("recipient"), body.get("message")
        allowed = {"recipient", "message", "messaging_type"}
        if (set(body) - allowed or not isinstance(rcp, dict) or len(rcp) != 1
                or not isinstance(msg, dict) or set(msg) != {"text"}
                or not isinstance(msg.get("text"), str) or not msg["text"]):
            self._problem("%s messages: body %r" % (product, body))
            st, b = graph_error(100, "(#100) Invalid parameter")
            return st, b, None, None
        text = msg["text"]
        if product == "facebook" and len(text) > 2000:
            self._problem("messenger text of %d characters" % len(text))
            st, b = graph_error(100, "(#100) Length of param message[text] must be less than "
                                     "or equal to 2000")
            return st, b, None, None
        if product == "instagram" and len(text.encode("utf-8")) > 1000:
            self._problem("instagram text of %d bytes" % len(text.encode("utf-8")))
            st, b = graph_error(100, "(#100) Length of param message[text] must be less than "
                                     "or equal to 1000")
            return st, b, None, None
        rec = {"product": product, "owner": owner, "text": text, "to": None,
               "comment_id": None, "time": time.time(),
               "messaging_type": body.get("messaging_type")}
        if "comment_id" in rcp:
            cid = rcp["comment_id"]
            c = self.comments.get(cid)
            if not c or c["product"] != product or c["owner"] != owner:
                self._problem("private reply to unknown comment %r" % cid)
                st, b = graph_error(100, "(#100) Invalid parameter", 2018001)
                return st, b, None, None
            if c["replied"]:
                st, b = graph_error(10900, "Activity already replied to")
                return st, b, None, None
            c["replied"] = True
            psid = self._psid(product, owner, c["author"])
            rec.update(comment_id=cid, to=psid)
        elif "id" in rcp:
            psid = rcp["id"]
            if body.get("messaging_type") != "RESPONSE":
                self._problem("message to %s without messaging_type RESPONSE" % psid)
            t = self.wrote.get((product, psid))
            if t is None or time.time() - t > 24 * 3600:
                st, b = graph_error(10, "(#10) This message is sent outside of allowed "
                                        "window.", 2018278)
                return st, b, None, None
            rec["to"] = psid
        else:
            self._problem("recipient %r" % rcp)
            st, b = graph_error(100, "(#100) Invalid parameter")
            return st, b, None, None
        mid = "m_%d" % self._new_id()
        rec["mid"] = mid
        self.messages.append(rec)
        echo = None
        if product in self.echo_to:
            maker = fb_message if product == "facebook" else ig_message
            echo = (product, maker(owner, rec["to"], mid + "_echo", text, is_echo=True))
        return 200, {"recipient_id": rec["to"], "message_id": mid}, None, echo

    def _wa_send(self, h, pnid, body):
        bad = self._auth(h, self.numbers[pnid][0], "number %s" % pnid)
        if bad:
            return bad[0], bad[1], None, None
        to, typ = body.get("to"), body.get("type")
        ok = (body.get("messaging_product") == "whatsapp" and isinstance(to, str)
              and to.isdigit() and body.get("recipient_type", "individual") == "individual")
        allowed = {"messaging_product", "recipient_type", "to", "type", "text", "template",
                   "context"}
        if not ok or set(body) - allowed or typ not in ("text", "template") or typ not in body:
            self._problem("whatsapp: body %r" % body)
            st, b = graph_error(100, "(#100) Invalid parameter")
            return st, b, None, None
        rec = {"product": "whatsapp", "owner": pnid, "to": to, "type": typ, "text": None,
               "template": None, "time": time.time()}
        if typ == "text":
            t = body["text"]
            if (not isinstance(t, dict) or set(t) - {"body", "preview_url"}
                    or not isinstance(t.get("body"), str) or not t["body"]):
                self._problem("whatsapp text %r" % t)
                st, b = graph_error(100, "(#100) Invalid parameter")
                return st, b, None, None
            if len(t["body"]) > 4096:
                self._problem("whatsapp text of %d characters" % len(t["body"]))
                st, b = graph_error(100, "(#100) Param text['body'] must be at most 4096 "
                                         "characters long.")
                return st, b, None, None
            w = self.wrote.get(("whatsapp", to))
            if w is None or time.time() - w > 24 * 3600:
                st, b = graph_error(131047, "Re-engagement message")
                b["error"]["error_data"] = {"messaging_product": "whatsapp", "details":
                                            "Message failed to send because more than 24 hours "
                                            "have passed since the customer last replied to "
                                            "this number."}
                return st, b, None, None
            rec["text"] = t["body"]
        else:
            tp = body["template"]
            if (not isinstance(tp, dict) or not isinstance(tp.get("name"), str)
                    or not isinstance(tp.get("language"), dict)
                    or not isinstance(tp["language"].get("code"), str)):
                self._problem("whatsapp template %r" % tp)
                st, b = graph_error(100, "(#100) Invalid parameter")
                return st, b, None, None
            rec["template"] = (tp["name"], tp["language"]["code"])
        wamid = "wamid.OUT%d" % self._new_id()
        rec["id"] = wamid
        self.messages.append(rec)
        return 200, {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                     "messages": [{"id": wamid}]}, None, None

    def _echo(self, product, payload):
        url, secret = self.echo_to[product]
        body = meta_dumps(payload)
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers=hook_headers(body, secret))
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError:
            status = 0
        with self.lock:
            self.echo_results.append((product, status))
            self.lock.notify_all()
