"""Shared fixtures: the app and its test client, MNIST, and a real server process on a free port."""

import contextlib
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from digits import mnist_data, service

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL_PATH = PROJECT_ROOT / "mnist-neural.h5"


@pytest.fixture(scope="session")
def app():
    """One app for the session: loading TensorFlow and the model takes seconds."""
    return service.create_app({"TESTING": True, "MODEL_PATH": str(MODEL_PATH), "ACCESS_LOG": False})


@pytest.fixture()
def client(app):
    """Flask's test client."""
    return app.test_client()


@pytest.fixture(scope="session")
def mnist():
    """MNIST from the local cache (`python3 -m digits.mnist_data` puts it there)."""
    return mnist_data.load_mnist(allow_download=False)


def free_port():
    """A port nobody listens on now (never a fixed 5000, which a developer may be using)."""
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(command, port, ready_path="/ready", timeout=60, env=None):
    """Start a server process, wait until ready_path answers 200, stop it afterwards."""
    log = open(PROJECT_ROOT / "build" / f"server-{port}.log", "w") if (PROJECT_ROOT / "build").is_dir() \
        else subprocess.DEVNULL
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode} before it was ready")
            try:
                with urllib.request.urlopen(base_url + ready_path, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {timeout} s")
            time.sleep(0.2)
        yield base_url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log is not subprocess.DEVNULL:
            log.close()


@pytest.fixture(scope="session")
def live_server_process():
    """`python3 app.py` as users start it, on a free port: yields (base URL, process)."""
    port = free_port()
    command = [sys.executable, "app.py", "--port", str(port), "--model", str(MODEL_PATH)]
    with running_server(command, port) as started:
        yield started


@pytest.fixture(scope="session")
def live_server(live_server_process):
    """The base URL of the real server process."""
    return live_server_process[0]
