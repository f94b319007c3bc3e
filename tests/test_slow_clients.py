"""gunicorn as shipped (gunicorn.conf.py) against slow clients and requests its HTTP parser refuses."""

import json
import os
import signal
import socket
import threading
import time

import pytest
import requests

from testsupport.images import canvas_png
from testsupport.servers import Gunicorn

CANVAS = canvas_png()
DEADLINE_S, IDLE_S = 4, 2  # Shortened from the shipped 15 s and 5 s, so the tests stay short.


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    """The shipped configuration with two workers on a free loopback port, answering."""
    metrics = tmp_path_factory.mktemp("metrics")
    env = {"MNIST_REQUEST_DEADLINE": str(DEADLINE_S), "MNIST_IDLE_TIMEOUT": str(IDLE_S),
           "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    with Gunicorn(log_dir=tmp_path_factory.mktemp("gunicorn"), overrides=["--workers", "2"], env=env) as server:
        server.metrics_dir = metrics
        server.first_answer(CANVAS)
        yield server


def upload(base_url):
    """POST the canvas to /upload; the response."""
    return requests.post(base_url + "/upload", files={"file": ("canvas.png", CANVAS)}, timeout=20)


def exchange(port, data, read_timeout=30):
    """Send raw bytes, then read until the server closes; the raw answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass  # The server closed with our unread bytes pending: its answer was already read.
    return answer


def status_and_json(answer):
    """The status code and JSON body of a raw HTTP answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"application/json" in head, answer[:400]
    return int(head.split()[1]), json.loads(body)


def trickle(port, head, stop):
    """Send `head`'s bytes one at a time, slowly, until the server drops us or `stop` is set."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            for byte in head:
                if stop.wait(0.5):
                    return
                sock.sendall(bytes([byte]))
    except OSError:
        pass


POST_HEAD = (b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
             b"Content-Length: 1000\r\n\r\n")


def test_normal_uploads_are_answered_while_slow_clients_trickle(gunicorn):
    stop = threading.Event()
    slow = [POST_HEAD, POST_HEAD + b"--b\r\n" + b"x" * 1000] * 4  # Trickling headers, and bodies.
    threads = [threading.Thread(target=trickle, args=(gunicorn.port, head, stop)) for head in slow]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        answers = [upload(gunicorn.base_url) for _ in range(5)]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert [(answer.status_code, answer.json()) for answer in answers] == [(200, "7")] * 5


def test_a_body_shorter_than_its_content_length_gets_a_json_408(gunicorn):
    status, body = status_and_json(exchange(gunicorn.port, POST_HEAD + b"--b\r\n"))
    assert (status, body["error"], body["status"]) == (408, "request_timeout", 408)


def test_headers_that_never_end_get_a_json_408(gunicorn):
    status, body = status_and_json(exchange(gunicorn.port, b"GET /health HTTP/1.1\r\nHost: x\r\n"))
    assert (status, body["error"], body["status"]) == (408, "request_timeout", 408)


HTTP_REFUSALS = {
    "huge query": (b"GET /?" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "huge header line": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65_000 + b"\r\n\r\n", 431),
    "too many headers": (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(200))
                         + b"\r\n", 431),
    "negative content-length": (b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
    "transfer-encoding and content-length": (
        b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "10 kB boundary": (b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary="
                       + b"b" * 10_000 + b"\r\nContent-Length: 4\r\n\r\nabcd", 431),
    "bad request line": (b"\x01\x02 nonsense\r\n\r\n", 400),
}


@pytest.mark.parametrize("name", HTTP_REFUSALS)
def test_requests_the_http_parser_refuses_get_our_json_error(gunicorn, name):
    request, expected = HTTP_REFUSALS[name]
    status, body = status_and_json(exchange(gunicorn.port, request))
    assert status == expected == body["status"]
    assert set(body) == {"error", "message", "status"}


def test_a_dead_workers_metric_files_are_folded_into_the_archive(gunicorn):
    for _ in range(3):
        assert upload(gunicorn.base_url).status_code == 200
    before = _uploads_counted(gunicorn.base_url)
    victim = gunicorn.workers()[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while (victim in gunicorn.workers() or len(gunicorn.workers()) < 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert upload(gunicorn.base_url).status_code == 200
    assert not list(gunicorn.metrics_dir.glob(f"*_{victim}.db"))
    assert (gunicorn.metrics_dir / "counter_archive.db").exists()
    assert _uploads_counted(gunicorn.base_url) >= before + 1


def _uploads_counted(base_url):
    """digits_http_requests_total for 200 answers to /upload, summed over methods, from /metrics."""
    total = 0.0
    for line in requests.get(base_url + "/metrics", timeout=20).text.splitlines():
        if line.startswith("digits_http_requests_total{") and 'endpoint="/upload"' in line and 'status="200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total

