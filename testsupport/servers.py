"""Real server processes for tests and benchmarks: free loopback ports, app.py and gunicorn, their memory."""

import contextlib
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from digits import PROJECT_ROOT
from testsupport import http

GUNICORN_CONFIG = PROJECT_ROOT / "gunicorn.conf.py"
PRODUCTION_APP = "digits.serving:create_app()"


def free_port():
    """A loopback port nobody listens on now (never a fixed 5000, which a developer may be using)."""
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_ready(base_url, process, ready_path="/ready", timeout=60):
    """Poll ready_path until it answers 200; fail if the process exits first or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(base_url + ready_path, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not ready after {timeout} s")
        time.sleep(0.1)


def stop(process, grace=20):
    """SIGTERM, as a process manager stops a server; SIGKILL if it has not exited after `grace` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running_server(command, port, ready_path="/ready", timeout=60, env=None, log_path=None):
    """Start a server process, wait until ready_path answers 200, stop it afterwards; yields (url, process)."""
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, process, ready_path, timeout)
        yield base_url, process
    finally:
        stop(process)
        if log_path:
            log.close()


class Gunicorn:
    """gunicorn with gunicorn.conf.py on a free loopback port, started and stopped by `with`."""

    def __init__(self, app=PRODUCTION_APP, log_dir=".", overrides=(), env=None, config=GUNICORN_CONFIG):
        """Remember what to start (gunicorn flags in `overrides`); nothing runs yet."""
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = pathlib.Path(log_dir) / f"gunicorn-{self.port}.log"
        config_flags = ["-c", str(config)] if config else []
        self.command = [sys.executable, "-m", "gunicorn", *config_flags, "--bind", f"127.0.0.1:{self.port}",
                        *overrides, app]
        self.env = {**os.environ, **(env or {})}

    def __enter__(self):
        """Start gunicorn; the caller waits for it (first_answer or wait_until_ready)."""
        self._log = open(self.log_path, "w")
        self.launched = time.perf_counter()
        self.process = subprocess.Popen(self.command, cwd=PROJECT_ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=self.env)
        return self

    def wait_until_ready(self, timeout=90):
        """Block until /ready answers 200."""
        wait_until_ready(self.base_url, self.process, timeout=timeout)
        return self

    def first_answer(self, data, timeout=120):
        """Seconds from launching gunicorn to the first successful /upload answer, and that answer."""
        deadline = self.launched + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                answer = http.post_upload(self.base_url, data, timeout=timeout)
                return time.perf_counter() - self.launched, answer
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.02)  # Not listening yet; a bound socket instead queues us until a worker is up.
        raise RuntimeError(f"no answer after {timeout} s:\n{self.log_tail()}")

    def workers(self):
        """The worker processes' ids (the master's children)."""
        return children(self.process.pid)

    def worker_class(self):
        """The worker class gunicorn says it uses."""
        found = re.search(r"Using worker: (\S+)", self.log_path.read_text())
        return found.group(1) if found else "?"

    def log_tail(self, lines=20):
        """The end of gunicorn's log, for error messages."""
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])

    def __exit__(self, *exc):
        """SIGTERM, as a process manager stops it, then wait for the graceful shutdown."""
        stop(self.process, grace=40)
        self._log.close()


def children(pid):
    """The ids of a process's direct children."""
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry.name))
    return sorted(pids)


def resident_mib(pid):
    """A process's resident memory (VmRSS) in MiB."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def thread_count(pid):
    """How many threads a process runs."""
    return len(os.listdir(f"/proc/{pid}/task"))
