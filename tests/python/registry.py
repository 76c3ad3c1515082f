"""A `gregor registry` process for tests: started against a broker, on a free port,
ready once its ready line is printed and `GET /` answers."""
import json
import re
import select
import signal
import subprocess
import time
import urllib.error
import urllib.request

from conftest import BIN

READY = re.compile(r"gregor registry ready: listening on ([0-9.]+):(\d+)")


class Registry:
    def __init__(self, bootstrap, log_path, session_timeout_ms=6000, port=0):
        self.bootstrap = bootstrap
        self.log_path = log_path
        self.session_timeout_ms = session_timeout_ms
        # 0: any free port; a fixed one when the broker must know it in advance.
        self.port = port
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60.0):
        args = [
            BIN, "registry", "-b", self.bootstrap,
            "--listen", f"127.0.0.1:{self.port}",
            "--session-timeout-ms", str(self.session_timeout_ms),
        ]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited with {self.proc.returncode}; see {self.log_path}")
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                m = READY.search(self.proc.stdout.readline().decode())
                if m:
                    self.port = int(m.group(2))
                    break
        else:
            raise RuntimeError(f"registry not ready in {timeout}s; see {self.log_path}")
        while time.monotonic() < deadline:
            try:
                if self.get("/")[1] == {}:
                    return self
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.05)
        raise RuntimeError("registry does not answer GET /")

    def request(self, method, path, body=None):
        """(status, decoded JSON body) for a request; errors are returned, not raised."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        try:
            with urllib.request.urlopen(req, timeout=90) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body)

    def put(self, path, body):
        return self.request("PUT", path, body)

    def delete(self, path):
        return self.request("DELETE", path)

    def stop(self, timeout=30.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
