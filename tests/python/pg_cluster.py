"""A throwaway PostgreSQL cluster for the connect tests: initdb in a temp dir,
wal_level=logical, a free port on 127.0.0.1, its unix socket in the temp dir; run as
the `postgres` OS user when the tests run as root (postgres refuses root). Stopped and
removed at the end."""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def pg_bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


class PgCluster:
    def __init__(self):
        self.bin = pg_bin_dir()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.dir = tempfile.mkdtemp(prefix="gregor-pg-")
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = None

    def _run(self, args, **kw):
        return subprocess.run(args, user=self.user, capture_output=True, text=True, **kw)

    def start(self, timeout=60.0):
        data = os.path.join(self.dir, "data")
        r = self._run([f"{self.bin}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8"])
        assert r.returncode == 0, r.stderr
        log = open(os.path.join(self.dir, "pg.log"), "ab")
        self.proc = subprocess.Popen(
            [f"{self.bin}/postgres", "-D", data, "-p", str(self.port), "-k", self.dir,
             "-c", "listen_addresses=127.0.0.1", "-c", "wal_level=logical",
             "-c", "max_replication_slots=8", "-c", "max_wal_senders=8", "-c", "fsync=off"],
            user=self.user, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited; see {self.dir}/pg.log")
            if self._run([f"{self.bin}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)]).returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("postgres not ready")

    @property
    def url(self):
        return f"jdbc:postgresql://127.0.0.1:{self.port}/postgres"

    def sql(self, statement):
        """Rows of a statement as lists of text (psql -A -t, `|`-separated)."""
        r = self._run([f"{self.bin}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                       "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-Atc", statement])
        assert r.returncode == 0, r.stderr
        return [line.split("|") for line in r.stdout.splitlines() if line]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
