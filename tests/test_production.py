"""gunicorn with the production settings: mixed load, a killed worker, a graceful SIGTERM, and the worker's start."""

import importlib.metadata
import os
import pathlib
import signal
import threading
import time

import pytest
import requests

from benchmarks import soak
from digits.serving import page, worker
from testsupport.http import multipart
from testsupport.images import canvas_png
from testsupport.servers import Gunicorn

CANVAS = canvas_png()


@pytest.fixture()
def gunicorn(tmp_path):
    """gunicorn.conf.py with two workers on a free loopback port, answering."""
    with Gunicorn(log_dir=tmp_path, overrides=["--workers", "2"]) as server:
        server.first_answer(CANVAS)
        yield server


def upload(base_url, data=CANVAS, timeout=30):
    """POST one image to /upload."""
    return requests.post(base_url + "/upload", files={"file": ("canvas.png", data)}, timeout=timeout)


def test_mixed_load_gives_no_5xx_no_dropped_connection_and_flat_memory(gunicorn):
    report = soak.soak(gunicorn, duration=20, clients=8)
    assert report["requests"] > 100
    assert soak.failures(report, max_growth_mib_per_minute=30.0) == []
    assert {200, 400, 413, 415, 422} <= set(report["statuses"])


def test_every_kind_of_response_arrives_whole(gunicorn):
    """Headers go out with the body in one write: files (sent with sendfile), JSON, errors, empty bodies."""
    static = pathlib.Path(page.blueprint.static_folder)
    for path, expected in [("/", static / "index.html"), ("/page/page.js", static / "page.js")]:
        answer = requests.get(gunicorn.base_url + path, timeout=30)
        assert answer.status_code == 200 and answer.content == expected.read_bytes()
        assert int(answer.headers["Content-Length"]) == len(answer.content)
    assert upload(gunicorn.base_url).json() == "7"
    missing = requests.post(gunicorn.base_url + "/upload", data={"note": "no file"}, timeout=30)
    assert missing.status_code == 400 and missing.json()["error"] == "missing_file"
    head = requests.head(gunicorn.base_url + "/health", timeout=30)
    assert head.status_code == 200 and head.content == b""
    preflight = requests.options(gunicorn.base_url + "/upload", timeout=30, headers={
        "Origin": "http://localhost:4200", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200 and preflight.headers["Access-Control-Allow-Origin"]
    assert requests.get(gunicorn.base_url + "/health", timeout=30).json()["status"] == "ok"


def test_metrics_add_up_over_all_workers(gunicorn):
    for _ in range(20):
        upload(gunicorn.base_url)
    text = requests.get(gunicorn.base_url + "/metrics", timeout=30).text
    line = next(line for line in text.splitlines() if line.startswith('digits_predictions_total{digit="7"}'))
    assert float(line.split()[-1]) >= 20


def test_a_killed_worker_is_replaced_and_the_service_keeps_answering(gunicorn):
    victim = gunicorn.workers()[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    answers = []
    while time.monotonic() < deadline and (len(answers) < 20 or victim in gunicorn.workers()
                                            or len(gunicorn.workers()) < 2):
        answers.append(upload(gunicorn.base_url).json())
    assert victim not in gunicorn.workers() and len(gunicorn.workers()) == 2
    assert answers[-20:] == ["7"] * 20


def slow_body(boundary, data, pieces=5, pause=0.3):
    """A multipart body sent in pieces, so the request is still in flight when the server is told to stop."""
    body, _ = multipart(data, boundary)
    step = len(body) // pieces + 1
    for start in range(0, len(body), step):
        yield body[start : start + step]
        time.sleep(pause)


def test_sigterm_lets_in_flight_requests_finish(gunicorn):
    result = {}

    def send():
        result["response"] = requests.post(gunicorn.base_url + "/upload", data=slow_body("x", CANVAS),
                                           headers={"Content-Type": "multipart/form-data; boundary=x"}, timeout=30)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.4)  # The request is being received now.
    gunicorn.process.send_signal(signal.SIGTERM)
    sender.join(timeout=30)
    assert result["response"].status_code == 200 and result["response"].json() == "7"
    assert gunicorn.process.wait(timeout=30) == 0


def test_inside_the_block_entry_points_answer_as_the_packages_metadata_does_from_one_reading(monkeypatch):
    read = importlib.metadata.entry_points
    groups = ["console_scripts", "gevent.plugins.monkey.will_patch_all", "no.such.group"]
    expected = {group: sorted(map(str, read(group=group))) for group in groups}
    assert expected["gevent.plugins.monkey.will_patch_all"]  # gevent's own plugin: the comparison is not of nothing.
    readings = []
    distributions = importlib.metadata.distributions
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: readings.append(1) or distributions())
    with worker.entry_points_read_once():
        for _ in range(25):  # As often as gevent's patching asks.
            assert {group: sorted(map(str, importlib.metadata.entry_points(group=group))) for group in groups} \
                == expected
    assert len(readings) == 1
    assert importlib.metadata.entry_points is read


def test_the_worker_monkey_patches_with_entry_points_read_once(monkeypatch):
    seen = []
    monkeypatch.setattr(worker.GeventWorker, "patch", lambda self: seen.append(importlib.metadata.entry_points))
    read = importlib.metadata.entry_points
    worker.DigitsWorker.patch(object.__new__(worker.DigitsWorker))
    assert len(seen) == 1 and seen[0] is not read  # gevent's patching ran, with the reading-once lookup.
    assert importlib.metadata.entry_points is read
