"""telegram_mock - a small Telegram Bot API server for frontdesk's tests.

Serves /bot<TOKEN>/<method> on 127.0.0.1 (random port) for getMe,
getUpdates, deleteWebhook, setWebhook, getWebhookInfo, sendMessage and
deleteMessage, in a thread of the test process.  The test pushes updates
(push / push_message, or anything at all with push_raw / answer_next for
fuzzing), reads what the bot did (requests / sent), and programs failures
(fail_send, forbid_dm).  Python 3 standard library only.

    mock = TelegramMock("123:abc").start()
    mock.push_message(chat_id=-100, text="hi", user_id=7)
    mock.wait_sent(lambda m: m["chat_id"] == -100)
    mock.stop()

getUpdates behaves like Telegram's: `offset` confirms (drops) every update
below it; with updates pending it answers at once, else it holds the request
up to `timeout` seconds or until an update is pushed.  In `immediate` mode
it answers at once with nothing (like telegram-test-api), so a client that
spins shows up in the request count.
"""
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOT_ID = 424242
BOT_NAME = "frontdesk_test_bot"


def _num(v):
    """A form value as Telegram reads it: an integer where it is one."""
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            if v in ("true", "false"):
                return v == "true"
    return v


class TelegramMock:
    def __init__(self, token, bot_id=BOT_ID, username=BOT_NAME, port=0):
        self.token = token
        self.want_port = port
        self.bot_id = bot_id
        self.username = username
        self.immediate = False
        self.cond = threading.Condition()
        self.updates = []        # pending Update objects, in order
        self.redeliver = []      # returned once more whatever the offset
        self.raw_answers = {}    # method -> [(status, bytes)] for its next calls
        self.reqs = []           # (method, params, headers, time) of every request
        self.sent = []           # params of every accepted sendMessage
        self.deleted = []        # params of every accepted deleteMessage
        self.webhook = None      # {"url", "secret_token", ...} once set
        self.failures = []       # [method, status, retry_after, count, desc]
        self.forbidden = set()   # user ids a DM to is refused with 403
        self.next_update = 1000
        self.next_message = 500
        self.server = None
        self.thread = None
        self.closing = False

    # ---- life cycle ---------------------------------------------------
    def start(self):
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                mock._handle(self)

            def do_POST(self):
                mock._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.want_port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def port(self):
        return self.server.server_address[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # ---- what the test does ---------------------------------------------
    def push(self, update, redeliver=False):
        """Queues an Update (update_id assigned when missing); returns it.
        redeliver: hand it out once more even below the confirmed offset,
        as Telegram does when a confirmation got lost."""
        with self.cond:
            if "update_id" not in update:
                update = dict(update, update_id=self.next_update)
            self.next_update = max(self.next_update, update["update_id"] + 1)
            (self.redeliver if redeliver else self.updates).append(update)
            self.cond.notify_all()
        return update

    def push_raw(self, item):
        """Queues any JSON value as an update, as it is (for fuzzing)."""
        with self.cond:
            self.updates.append(item)
            self.cond.notify_all()

    def answer_next(self, status, body, method="getUpdates"):
        """The next call of method gets exactly this answer (bytes)."""
        with self.cond:
            self.raw_answers.setdefault(method, []).append((status, body))
            self.cond.notify_all()

    def message(self, text, chat_id, user_id, chat_type=None, message_id=None,
                first_name="Ana", last_name=None, username=None, is_bot=False,
                thread=None, update_id=None, edited=False):
        """Builds an Update carrying one message (not queued)."""
        if chat_type is None:
            chat_type = "private" if chat_id == user_id else "supergroup"
        with self.cond:
            if message_id is None:
                self.next_message += 1
                message_id = self.next_message
            if update_id is None:
                update_id = self.next_update
                self.next_update += 1
        sender = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if last_name:
            sender["last_name"] = last_name
        if username:
            sender["username"] = username
        chat = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = "Support"
        m = {"message_id": message_id, "date": int(time.time()), "from": sender,
             "chat": chat, "text": text}
        if thread is not None:
            m["message_thread_id"] = thread
            m["is_topic_message"] = True
        return {"update_id": update_id, ("edited_message" if edited else "message"): m}

    def push_message(self, *args, **kw):
        return self.push(self.message(*args, **kw))

    def fail_send(self, status, count=1, retry_after=None, description=None,
                  method="sendMessage"):
        """The next `count` calls of method answer `status`."""
        with self.cond:
            self.failures.append([method, status, retry_after, count, description])

    def forbid_dm(self, user_id, forbid=True):
        """sendMessage to chat_id == user_id answers 403 while forbidden."""
        with self.cond:
            (self.forbidden.add if forbid else self.forbidden.discard)(user_id)

    def requests(self, method=None):
        with self.cond:
            return [r for r in self.reqs if method is None or r[0] == method]

    def sent_to(self, chat_id):
        with self.cond:
            return [m for m in self.sent if m.get("chat_id") == chat_id]

    def wait_sent(self, pred, timeout=10.0):
        """Waits for an accepted sendMessage matching pred; returns it or None."""
        end = time.time() + timeout
        with self.cond:
            while True:
                for m in self.sent:
                    if pred(m):
                        return m
                left = end - time.time()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def wait_request(self, method, timeout=10.0, pred=None):
        end = time.time() + timeout
        with self.cond:
            while True:
                for r in self.reqs:
                    if r[0] == method and (pred is None or pred(r[1])):
                        return r
                left = end - time.time()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def pending(self):
        with self.cond:
            return list(self.updates)

    # ---- the server side -------------------------------------------------
    def _params(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n > 0 else b""
        ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        query = urllib.parse.urlsplit(h.path).query
        params = {k: _num(v) for k, v in urllib.parse.parse_qsl(query)}
        if raw:
            if ctype == "application/x-www-form-urlencoded":
                params.update({k: _num(v) for k, v in
                               urllib.parse.parse_qsl(raw.decode("utf-8", "replace"))})
            else:
                body = json.loads(raw.decode("utf-8"))  # ValueError -> 400
                if not isinstance(body, dict):
                    raise ValueError("body is not an object")
                params.update(body)
        return params

    def _send(self, h, status, obj):
        self._send_raw(h, status, json.dumps(obj).encode())

    def _send_raw(self, h, status, data):
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. a held poll when the daemon stopped)

    def _error(self, h, status, description, parameters=None):
        obj = {"ok": False, "error_code": status, "description": description}
        if parameters:
            obj["parameters"] = parameters
        self._send(h, status, obj)

    def _handle(self, h):
        path = urllib.parse.urlsplit(h.path).path
        parts = path.split("/")
        if len(parts) != 3 or not parts[1].startswith("bot"):
            return self._error(h, 404, "Not Found")
        token, method = parts[1][3:], parts[2]
        try:
            params = self._params(h)
        except (ValueError, UnicodeDecodeError) as e:
            return self._error(h, 400, "Bad Request: %s" % e)
        with self.cond:
            self.reqs.append((method, params, dict(h.headers), time.time()))
            self.cond.notify_all()
        if token != self.token:
            return self._error(h, 401, "Unauthorized")
        fn = getattr(self, "_m_" + method, None)
        if fn is None:
            return self._error(h, 404, "Not Found: method not found")
        with self.cond:
            raw = self.raw_answers.get(method)
            raw = raw.pop(0) if raw else None
        if raw:
            return self._send_raw(h, raw[0], raw[1])
        fail = self._take_failure(method, params)
        if fail:
            return self._send(h, fail[0], fail[1])
        return fn(h, params)

    def _take_failure(self, method, params):
        with self.cond:
            if method == "sendMessage" and params.get("chat_id") in self.forbidden:
                return 403, {"ok": False, "error_code": 403, "description":
                             "Forbidden: bot can't initiate conversation with a user"}
            for f in self.failures:
                if f[0] == method and f[3] > 0:
                    f[3] -= 1
                    status, retry_after, desc = f[1], f[2], f[4]
                    obj = {"ok": False, "error_code": status}
                    if status == 429:
                        ra = retry_after if retry_after is not None else 1
                        obj["description"] = desc or "Too Many Requests: retry after %d" % ra
                        obj["parameters"] = {"retry_after": ra}
                    else:
                        obj["description"] = desc or ("Internal Server Error" if status >= 500
                                                      else "Bad Request")
                    return status, obj
        return None

    def _ok(self, h, result):
        self._send(h, 200, {"ok": True, "result": result})

    def _m_getMe(self, h, p):
        self._ok(h, {"id": self.bot_id, "is_bot": True, "first_name": "Frontdesk",
                     "username": self.username, "can_join_groups": True,
                     "can_read_all_group_messages": True})

    def _m_deleteWebhook(self, h, p):
        with self.cond:
            self.webhook = None
        self._ok(h, True)

    def _m_setWebhook(self, h, p):
        if not p.get("url"):
            return self._error(h, 400, "Bad Request: bad webhook: URL is empty")
        with self.cond:
            self.webhook = dict(p)
        self._ok(h, True)

    def _m_getWebhookInfo(self, h, p):
        with self.cond:
            url = (self.webhook or {}).get("url", "")
            n = len(self.updates)
        self._ok(h, {"url": url, "has_custom_certificate": False, "pending_update_count": n})

    def _m_getUpdates(self, h, p):
        with self.cond:
            if self.webhook:
                return self._error(h, 409, "Conflict: can't use getUpdates method "
                                   "while webhook is active; use deleteWebhook to delete "
                                   "the webhook first")
            offset = p.get("offset")
            if isinstance(offset, int) and offset > 0:
                # Confirmed: everything queued before the first update at or
                # above the offset (items without an id go with them).
                keep = [i for i, u in enumerate(self.updates)
                        if isinstance(u, dict) and isinstance(u.get("update_id"), int)
                        and u["update_id"] >= offset]
                self.updates = self.updates[keep[0]:] if keep else []
            limit = p.get("limit") if isinstance(p.get("limit"), int) else 100
            timeout = p.get("timeout") if isinstance(p.get("timeout"), (int, float)) else 0
            end = time.time() + min(max(timeout, 0), 50)
            while not (self.updates or self.redeliver) and not self.immediate \
                    and not self.closing:
                left = end - time.time()
                if left <= 0:
                    break
                self.cond.wait(left)
            batch = self.redeliver + list(self.updates[:max(1, min(limit, 100))])
            self.redeliver = []
        self._ok(h, batch)

    def _m_sendMessage(self, h, p):
        text = p.get("text")
        if not isinstance(text, str) or not text.strip():
            return self._error(h, 400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > 4096:
            return self._error(h, 400, "Bad Request: message is too long")
        if p.get("chat_id") in (None, ""):
            return self._error(h, 400, "Bad Request: chat not found")
        with self.cond:
            self.next_message += 1
            mid = self.next_message
            self.sent.append(dict(p))
            self.cond.notify_all()
        cid = p.get("chat_id")
        self._ok(h, {"message_id": mid, "date": int(time.time()),
                     "from": {"id": self.bot_id, "is_bot": True, "first_name": "Frontdesk",
                              "username": self.username},
                     "chat": {"id": cid, "type": "private" if isinstance(cid, int) and cid > 0
                              else "supergroup"},
                     "text": text})

    def _m_deleteMessage(self, h, p):
        if p.get("chat_id") is None or p.get("message_id") is None:
            return self._error(h, 400, "Bad Request: message to delete not found")
        with self.cond:
            self.deleted.append(dict(p))
            self.cond.notify_all()
        self._ok(h, True)


if __name__ == "__main__":
    # Manual use: serve with a token until interrupted.
    import sys
    m = TelegramMock(sys.argv[1] if len(sys.argv) > 1 else "123:TEST").start()
    print(m.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        m.stop()
