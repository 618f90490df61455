"""fdtest - shared helpers for frontdesk's integration and end-to-end tests.

A test script imports this, starts the real daemon with a config it writes
into a temporary folder, talks to it (and to mock platforms) on 127.0.0.1
only, and reports each check as a TAP line that tests/run counts:

    t = fdtest.Tap()
    t.ok(cond, "name", "detail on failure")
    ...
    sys.exit(t.done())
"""
import http.client
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", "build")
FRONTDESK = os.environ.get("FRONTDESK", os.path.join(ROOT, BUILD, "frontdesk"))
PLUGINS = os.environ.get("FRONTDESK_PLUGINS", os.path.join(ROOT, BUILD, "plugins"))


class Tap:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def ok(self, cond, name, detail=""):
        if cond:
            self.passed += 1
            print("ok - %s" % name, flush=True)
        else:
            self.failed += 1
            print("not ok - %s%s" % (name, (": " + str(detail)) if detail else ""), flush=True)
        return bool(cond)

    def eq(self, got, want, name):
        return self.ok(got == want, name, "got %r, want %r" % (got, want))

    def done(self):
        return 1 if self.failed else 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(fn, timeout=10.0, step=0.02):
    """Polls fn() until it returns something true; returns that or None."""
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return None


class Daemon:
    """The real frontdesk daemon on a temporary folder.

    channels: text of the [channel:...] sections; scripts: {name: lua source}
    written into <tmp>/scripts (lib/ modules as "lib/x.lua").  Call start(),
    then stop() (SIGTERM, waits) or kill() (SIGKILL)."""

    def __init__(self, channels, scripts=None, core_extra="", env=None, copy_scripts=False,
                 log_level="debug"):
        self.dir = tempfile.mkdtemp(prefix="fdtest-")
        self.port = free_port()
        self.scripts_dir = os.path.join(self.dir, "scripts")
        os.makedirs(os.path.join(self.scripts_dir, "lib"))
        if copy_scripts:
            for name in os.listdir(os.path.join(ROOT, "scripts")):
                src = os.path.join(ROOT, "scripts", name)
                if os.path.isfile(src):
                    shutil.copy(src, self.scripts_dir)
            lib = os.path.join(ROOT, "scripts", "lib")
            if os.path.isdir(lib):
                for name in os.listdir(lib):
                    shutil.copy(os.path.join(lib, name), os.path.join(self.scripts_dir, "lib"))
        for name, src in (scripts or {}).items():
            self.write_script(name, src)
        self.config = os.path.join(self.dir, "config.ini")
        self.db = os.path.join(self.dir, "state.db")
        with open(self.config, "w") as f:
            f.write("[core]\nlisten = 127.0.0.1:%d\npublic_url = http://127.0.0.1:%d\n"
                    "state = %s\nplugins = %s\nscripts = %s\nlog_level = %s\n%s\n\n%s\n"
                    % (self.port, self.port, self.db, PLUGINS, self.scripts_dir, log_level,
                       core_extra, channels))
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.log_file = None

    def write_script(self, name, src):
        path = os.path.join(self.scripts_dir, name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(src)
        os.rename(tmp, path)  # an editor's atomic save

    def start(self, wait=True):
        self.log_file = open(self.log_path, "ab")
        cmd = [FRONTDESK, "run", "-c", self.config]
        if os.environ.get("FD_VALGRIND"):
            # the daemon links jemalloc: memcheck must replace its malloc too
            cmd = ["valgrind", "--error-exitcode=99", "--leak-check=full", "-q",
                   "--soname-synonyms=somalloc=*jemalloc*"] + cmd
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT, env=self.env)
        if wait and not wait_until(self.healthy, timeout=15):
            raise RuntimeError("daemon did not become healthy:\n" + self.log())
        return self

    def healthy(self):
        try:
            st, _ = self.request("GET", "/healthz", timeout=0.5)
            return st == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None, timeout=5):
        """One HTTP request to the daemon; returns (status, body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
                headers = dict(headers or {})
                headers.setdefault("Content-Type", "application/json")
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, needle, timeout=10):
        return wait_until(lambda: needle in self.log(), timeout=timeout)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    @contextlib.contextmanager
    def store_fails(self):
        """Inside the block every commit of the daemon's store fails: a
        file size limit of 1 byte on the running daemon (EFBIG; the daemon
        ignores SIGXFSZ).  Log lines written meanwhile are lost too."""
        pid = self.proc.pid
        soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))
        try:
            yield
        finally:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        if self.log_file:
            self.log_file.close()
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        if self.log_file:
            self.log_file.close()

    def sanitizer_report(self):
        """The first line of an ASan/UBSan/LSan report in the log, or None."""
        for line in self.log().splitlines():
            if ("ERROR: AddressSanitizer" in line or "ERROR: LeakSanitizer" in line
                    or "runtime error:" in line):
                return line.strip()
        return None

    def cleanup(self):
        if self.proc:
            self.stop()
        report = self.sanitizer_report()
        if report:
            # Counted by tests/run like any failed check.
            print("not ok - sanitizer report in the daemon log (%s): %s" % (self.log_path, report),
                  flush=True)
            os.environ["FD_KEEP"] = "1"
        if not os.environ.get("FD_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def run_cli(*args, input=None, timeout=30, env=None):
    """Runs `frontdesk ARGS...`; returns (exit code, stdout, stderr) as text."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([FRONTDESK] + list(args), input=input, capture_output=True,
                       timeout=timeout, text=True, env=e)
    return p.returncode, p.stdout, p.stderr
