"""The real server process over real HTTP: it answers, refuses bad input cleanly, stays up and small."""

import os
import socket
import subprocess
import sys

import pytest
import requests
from PIL import Image

from digits import PROJECT_ROOT, model_file
from digits.model_file import DEFAULT_PATH as MODEL_PATH
from testsupport import images, servers

CANVAS_SEVEN = images.encode(images.drawn_digit(images.SEVEN))


def upload(base_url, *files, path="/upload", filename="canvas.png"):
    """POST files as multipart field `file`."""
    return requests.post(base_url + path, files=[("file", (filename, data)) for data in files], timeout=30)


def resident_kib(pid):
    """The process's resident memory (VmRSS) in KiB."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_the_angular_clients_request_gets_a_bare_digit(live_server):
    response = requests.post(live_server + "/upload", files={"file": ("canvas.png", CANVAS_SEVEN, "image/png")},
                             headers={"Origin": "http://localhost:4200"}, timeout=30)
    assert response.status_code == 200 and response.json() == "7"
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "http://localhost:4200")


BAD_REQUESTS = {
    "no file field": lambda url: requests.post(url + "/upload", files={"image": ("a.png", CANVAS_SEVEN)}, timeout=30),
    "empty file": lambda url: upload(url, b""),
    "text": lambda url: upload(url, b"hello world\n" * 10, filename="notes.txt"),
    "html": lambda url: upload(url, b"<!doctype html><html><body>x</body></html>", filename="page.html"),
    "truncated png": lambda url: upload(url, CANVAS_SEVEN[: len(CANVAS_SEVEN) // 2]),
    "truncated jpeg": lambda url: upload(url, images.encode(images.drawn_digit().convert("RGB"), "JPEG")[:700]),
    "corrupt gif": lambda url: upload(url, b"GIF89a" + os.urandom(200)),
    "1x1": lambda url: upload(url, images.encode(Image.new("L", (1, 1), 255))),
    "1x500": lambda url: upload(url, images.encode(Image.new("L", (1, 500), 255))),
    "no ink": lambda url: upload(url, images.encode(Image.new("RGB", (400, 400), (250, 250, 250)))),
    "png bomb": lambda url: upload(url, images.png_bomb(13000, 13000)),
    "gif bomb": lambda url: upload(url, images.gif_bomb(60000, 60000)),
    "jpeg bomb": lambda url: upload(url, images.jpeg_bomb(60000, 60000)),
    "30 MB": lambda url: upload(url, os.urandom(30 * 1024 * 1024)),
    "random bytes": lambda url: upload(url, os.urandom(10000)),
    "long filename": lambda url: upload(url, b"x", filename="a" * 5000 + ".png"),
    "many files": lambda url: upload(url, *[CANVAS_SEVEN] * 200, path="/predict"),
    "raw body": lambda url: requests.post(url + "/upload", data=CANVAS_SEVEN,
                                          headers={"Content-Type": "image/png"}, timeout=30),
    "wrong method": lambda url: requests.delete(url + "/upload", timeout=30),
    "wrong path": lambda url: requests.get(url + "/../../etc/passwd", timeout=30),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_bad_input_gets_a_json_4xx_and_the_server_keeps_serving(live_server, name):
    response = BAD_REQUESTS[name](live_server)
    assert 400 <= response.status_code < 500, response.text[:200]
    body = response.json()
    assert body["status"] == response.status_code and body["error"] and body["message"]
    assert upload(live_server, CANVAS_SEVEN).json() == "7"


def test_memory_stays_bounded_under_bombs_and_big_uploads(live_server_process):
    base_url, process = live_server_process
    upload(base_url, CANVAS_SEVEN)
    before = resident_kib(process.pid)
    for _ in range(5):
        upload(base_url, images.png_bomb(13000, 13000))
        upload(base_url, os.urandom(9 * 1024 * 1024))  # Under the 10 MB limit: read, then refused.
    assert resident_kib(process.pid) - before < 100_000


def start_with_model(model_path):
    """Run app.py with a model file and return the finished process (it must refuse to start)."""
    return subprocess.run([sys.executable, "app.py", "--port", str(servers.free_port()), "--model", str(model_path)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)


def test_missing_model_stops_start_up_with_one_clear_line(tmp_path):
    result = start_with_model(tmp_path / "nowhere.h5")
    assert result.returncode != 0
    expected = f"error: cannot start: model file not found: {tmp_path / 'nowhere.h5'}"
    assert result.stderr.strip().splitlines()[-1] == expected


def model_with_export(folder, export_bytes=None):
    """A copy of the committed .h5 in folder, with the given bytes (by default the committed export) beside it."""
    model = folder / MODEL_PATH.name
    model.write_bytes(MODEL_PATH.read_bytes())
    model_file.export_path(model).write_bytes(
        model_file.export_path(MODEL_PATH).read_bytes() if export_bytes is None else export_bytes)
    return model


def test_missing_export_stops_start_up_saying_how_to_make_it(tmp_path):
    model = tmp_path / MODEL_PATH.name
    model.write_bytes(MODEL_PATH.read_bytes())
    result = start_with_model(model)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot start: {tmp_path / 'mnist-neural.onnx'} is missing: export mnist-neural.h5 with "
        f"python3 -m digits.training.export --model {model}")


def test_truncated_export_stops_start_up(tmp_path):
    broken = model_with_export(tmp_path, model_file.export_path(MODEL_PATH).read_bytes()[:5000])
    result = start_with_model(broken)
    last_line = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0
    exported = tmp_path / "mnist-neural.onnx"
    assert last_line.startswith(f"error: cannot start: could not read the exported model {exported}")


def test_wrong_shaped_model_stops_start_up(tmp_path):
    import keras

    wrong = tmp_path / "wrong.h5"
    keras.Sequential([keras.Input(shape=(32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(5)]).save(wrong)
    exported = subprocess.run([sys.executable, "-m", "digits.training.export", "--model", str(wrong)],
                              cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert exported.returncode == 0, exported.stderr[-2000:]
    result = start_with_model(wrong)
    last_line = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0
    assert "a model from 784 pixels (28x28) to 10 digits (or 11 with not-a-digit) is needed" in last_line


def test_app_py_also_serves_as_gunicorns_app_colon_app(monkeypatch):
    import importlib

    monkeypatch.setenv("MNIST_ACCESS_LOG", "false")
    module = importlib.import_module("app")
    assert "app" not in vars(module)  # Importing builds nothing; the app is made on first use ...
    wsgi = module.app
    assert wsgi is module.app  # ... once.
    assert wsgi.test_client().get("/ready").get_json() == {"ready": True}


def test_a_busy_port_is_reported_before_the_model_loads():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "app.py", "--port", str(port)], cwd=PROJECT_ROOT,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot start: 127.0.0.1:{port} is in use or not ours to listen on; "
        "choose another with --port or MNIST_PORT"]
