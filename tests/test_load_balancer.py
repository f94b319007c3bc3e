"""deploy/nginx/nginx.conf in front of 3 gunicorn replicas on loopback: load spreads, and losing a replica,
or restarting every replica one after another, under load, costs no request.

The shipped file runs with only its ports and paths rewritten (a temp folder for pid, logs and bodies).
Skipped where Debian's nginx is not installed (apt-get install -y nginx).
"""

import collections
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from digits import PROJECT_ROOT
from testsupport import http, images, servers

NGINX_CONF = PROJECT_ROOT / "deploy" / "nginx" / "nginx.conf"
REPLICAS = 3
CANVAS = images.CHROMIUM_CANVAS.read_bytes()

pytestmark = pytest.mark.skipif(not shutil.which("nginx"),
                                reason="load balancer test skipped: nginx is not installed (apt-get install -y nginx)")


def render(config, folder, listen_port, replica_ports):
    """The shipped configuration with our ports, and pid, logs and temp files in `folder`, run as this user."""
    user = "user root;" if os.geteuid() == 0 else ""  # Workers keep our identity so they can write `folder`.
    config = re.sub(r"^user .*;$", user, config, flags=re.MULTILINE)
    config = config.replace("/run/nginx.pid", str(folder / "nginx.pid"))
    config = config.replace("/var/log/nginx/", f"{folder}/").replace("/var/lib/nginx/", f"{folder}/temp-")
    config = re.sub(r"listen 127\.0\.0\.1:\d+;", f"listen 127.0.0.1:{listen_port};", config)
    servers_block = re.search(r"((?:\s*server 127\.0\.0\.1:\d+ [^;]*;)+)", config).group(1)
    options = re.search(r"server 127\.0\.0\.1:\d+ ([^;]*);", servers_block).group(1)
    replicas = "".join(f"\n        server 127.0.0.1:{port} {options};" for port in replica_ports)
    return config.replace(servers_block, replicas)


class Replica(servers.Gunicorn):
    """One replica: gunicorn with gunicorn.conf.py and one worker, restartable on its port."""

    def __init__(self, log_dir):
        """A replica on its own free port (nothing runs yet)."""
        super().__init__(log_dir=log_dir, overrides=["--workers", "1"], env={"WEB_CONCURRENCY": "1"})

    def restart(self):
        """SIGTERM (gunicorn stops listening and finishes what it holds), wait, start again on the same port."""
        self.__exit__(None, None, None)
        self.__enter__()

    def kill(self):
        """SIGKILL the worker and the master at once, as when a machine or container dies."""
        for pid in [*self.workers(), self.process.pid]:
            os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log.close()


class Load:
    """A few client threads posting the canvas to /upload through nginx until stopped (bounded in count)."""

    def __init__(self, base_url, threads=3, pause=0.02, max_requests=4000):
        """Nothing is sent until `with`."""
        self.base_url, self.pause, self.max_requests = base_url, pause, max_requests
        self.answers, self.failures = collections.Counter(), []
        self._stop, self._lock = threading.Event(), threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        while not self._stop.is_set():
            with self._lock:
                if sum(self.answers.values()) + len(self.failures) >= self.max_requests:
                    return
            try:
                answer = http.post_upload(self.base_url, CANVAS, timeout=60)
                outcome = None if answer == "7" else f"answered {answer!r}"
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                outcome = f"{type(error).__name__}: {error}"
            with self._lock:
                if outcome:
                    self.failures.append(outcome)
                else:
                    self.answers["7"] += 1
            time.sleep(self.pause)

    @property
    def sent(self):
        """Requests finished so far, answered or failed."""
        with self._lock:
            return sum(self.answers.values()) + len(self.failures)

    def wait_for(self, count, timeout=60):
        """Block until `count` more requests have finished."""
        target, deadline = self.sent + count, time.monotonic() + timeout
        while self.sent < target and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)


def served_by(access_log, start_line=0):
    """Requests per replica port from nginx's access log (the replica that answered, after any retries)."""
    counts, retried = collections.Counter(), 0
    for line in access_log.read_text().splitlines()[start_line:]:
        found = re.search(r"upstream=(\S.*?) upstream_status=", line)
        if found and "POST /upload" in line:
            addresses = found.group(1).replace(" : ", ", ").split(", ")
            counts[int(addresses[-1].rsplit(":", 1)[1])] += 1
            retried += len(addresses) > 1
    return counts, retried


def log_length(access_log):
    """Lines in the access log so far."""
    return len(access_log.read_text().splitlines()) if access_log.exists() else 0


def wait_for_listener(port, process, timeout=30):
    """Block until something accepts connections on the loopback port; fail if `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"nginx exited with {process.returncode}"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


@contextlib.contextmanager
def running_nginx(folder, replica_ports):
    """The shipped configuration, rendered into `folder`, running in front of `replica_ports`; yields its URL."""
    port = servers.free_port()
    config_path = folder / "nginx.conf"
    config_path.write_text(render(NGINX_CONF.read_text(), folder, port, replica_ports))
    nginx = subprocess.Popen(["nginx", "-p", str(folder), "-c", str(config_path), "-e", str(folder / "error.log"),
                              "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_for_listener(port, nginx)
        yield base_url
    finally:
        nginx.send_signal(signal.SIGQUIT)  # Graceful: finish what is in flight.
        try:
            nginx.wait(timeout=20)
        except subprocess.TimeoutExpired:
            nginx.kill()


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    """3 replicas and nginx in front; yields (nginx base URL, replicas, access log path)."""
    folder = tmp_path_factory.mktemp("nginx")
    replicas = [Replica(folder) for _ in range(REPLICAS)]
    for replica in replicas:
        replica.__enter__()  # All three start at once; each loads the model.
    try:
        for replica in replicas:
            replica.wait_until_ready(timeout=180)
        with running_nginx(folder, [replica.port for replica in replicas]) as base_url:
            yield base_url, replicas, folder / "digits-access.log"
    finally:
        for replica in replicas:
            replica.__exit__(None, None, None)


def test_load_is_spread_across_the_replicas(topology):
    base_url, replicas, access_log = topology
    start = log_length(access_log)
    with Load(base_url) as load:
        load.wait_for(150)
    counts, _ = served_by(access_log, start)
    shares = {port: counts[port] for port in (r.port for r in replicas)}
    print(f"\nspread over {REPLICAS} replicas: {shares} of {load.sent} requests, {len(load.failures)} failed")
    assert not load.failures
    assert all(count >= load.sent / REPLICAS / 3 for count in shares.values())  # Each takes a fair part.


def test_a_rolling_restart_under_load_costs_no_request(topology):
    base_url, replicas, access_log = topology
    start = log_length(access_log)
    steps = []
    with Load(base_url) as load:
        load.wait_for(20)
        for replica in replicas:  # One after another, as a Deployment's rolling update replaces pods.
            began = time.perf_counter()
            replica.restart()
            replica.wait_until_ready(timeout=180)
            steps.append(f":{replica.port} {time.perf_counter() - began:.0f} s")
            load.wait_for(20)
    counts, retried = served_by(access_log, start)
    print(f"\nrolling restart ({', '.join(steps)}): {load.sent} requests, {len(load.failures)} failed, "
          f"{retried} retried on another replica; served: {dict(counts)}")
    assert load.failures == []
    assert set(counts) == {replica.port for replica in replicas}


def test_a_replica_killed_under_load_costs_no_request(topology):
    base_url, replicas, access_log = topology
    victim = replicas[0]
    with Load(base_url) as load:
        load.wait_for(30)
        victim.kill()
        start = log_length(access_log)
        killed_at = load.sent
        load.wait_for(100)
    counts, retried = served_by(access_log, start)
    print(f"\nreplica :{victim.port} killed (SIGKILL) after {killed_at} requests; {load.sent} sent, "
          f"{len(load.failures)} failed, {retried} retried on another replica; served after the kill: {dict(counts)}")
    assert load.failures == []  # Last of the tests with replicas: the victim stays down.


def test_nginx_answers_its_own_errors_as_json(topology):
    base_url, _, _ = topology
    too_large = b"x" * (10 * 1024 * 1024 + 1)
    request = urllib.request.Request(base_url + "/upload", data=too_large,
                                     headers={"Content-Type": "application/octet-stream"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 413
    assert refused.value.headers["Content-Type"] == "application/json"
    assert json.loads(refused.value.read()) == {"error": "file_too_large", "status": 413,
                                               "message": "The request is larger than the limit of 10,485,760 "
                                                          "bytes (10 MiB)."}


def test_nginx_answers_502_as_json_when_no_replica_answers(tmp_path):
    dead_ports = [servers.free_port(), servers.free_port()]
    with running_nginx(tmp_path, dead_ports) as base_url, pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(base_url + "/upload", data=CANVAS), timeout=30)
    assert refused.value.code == 502 and refused.value.headers["Content-Type"] == "application/json"
    assert json.loads(refused.value.read())["error"] == "bad_gateway"
