"""Hostile uploads through the app: costly images, formats we never open, limits with their own codes."""

import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image, PpmImagePlugin

from digits.imaging import decoding, exceptions, preparation
from digits.serving import admission, metrics_files
from testsupport import images

CANVAS = images.canvas_png()


def post(client, path="/upload", files=(CANVAS,), **kwargs):
    """POST files as multipart field `file`."""
    data = {"file": [(io.BytesIO(content), "canvas.png") for content in files]}
    return client.post(path, data=data, content_type="multipart/form-data", **kwargs)


def raw_multipart(parts, boundary=b"hostile"):
    """A multipart body from (headers bytes, content bytes) parts, and its Content-Type."""
    body = b"".join(b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + content + b"\r\n" for head, content in parts)
    return body + b"--" + boundary + b"--\r\n", "multipart/form-data; boundary=" + boundary.decode()


def assert_json_error(response, status, code):
    """The response is our JSON error of that status and code."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body == {"error": code, "message": body["message"], "status": status}


def test_a_progressive_jpeg_scan_bomb_is_refused_before_decoding(client):
    with pytest.raises(exceptions.TooManyScans):
        decoding.decode_grayscale(images.jpeg_scan_bomb(5000, 1000))
    assert_json_error(post(client, files=[images.jpeg_scan_bomb(200, 1000)]), 413, "too_many_scans")
    # A large one is refused by the request's budget first, from the same count of scans.
    assert_json_error(post(client, files=[images.jpeg_scan_bomb(5000, 1000)]), 413, "too_many_pixels_in_request")


@pytest.mark.parametrize("data", [images.canvas_png(), images.png_bytes(np.zeros((28, 28)))], ids=["canvas", "gray"])
def test_a_png_cut_into_absurdly_many_chunks_is_refused_before_decoding(client, data):
    bomb = images.png_chunk_bomb(data, 20_000)  # 12 bytes each; 10 MB of them took Pillow seconds to walk.
    assert_json_error(post(client, files=[bomb]), 413, "too_many_chunks")
    assert post(client, files=[images.png_chunk_bomb(data, 9_000)]).status_code in {200, 422}  # Allowed, read.


def test_a_gif_with_absurdly_many_blocks_before_its_image_is_refused_before_decoding(client):
    bomb = images.gif_block_bomb(60_000)  # 2 blocks each: 120,000; a 4 MB one took Pillow 2.3 s in all.
    assert decoding._gif_blocks_before_image(bomb, decoding.MAX_GIF_BLOCKS) > decoding.MAX_GIF_BLOCKS
    assert_json_error(post(client, files=[bomb]), 413, "too_many_chunks")
    allowed = images.gif_block_bomb(1_000)
    assert decoding._gif_blocks_before_image(allowed, decoding.MAX_GIF_BLOCKS) == 2_000
    assert post(client, files=[allowed]).status_code == 422  # Read as usual: a black image holds no digit.


@pytest.mark.parametrize("image", [images.drawn_digit(side=60), images.drawn_digit(side=60).convert("RGB")],
                         ids=["gray", "colour"])
def test_gifs_as_encoders_write_them_have_few_blocks_before_their_image(image):
    for options in ({}, {"comment": b"scanned " * 100}, {"save_all": True, "append_images": [image]}):
        data = images.encode(image, "GIF", **options)
        assert decoding._gif_blocks_before_image(data, decoding.MAX_GIF_BLOCKS) <= 5
        assert decoding.decode_grayscale(data).shape == (60, 60)


def test_a_png_in_many_small_idat_chunks_is_read_as_usual():
    data = images.encode(images.drawn_digit(side=400).convert("RGBA"))  # A canvas: the fast path.
    split = images.png_split_idat(data, 2_000)  # Its image data in 2,000 IDAT chunks, a few bytes each.
    assert split != data and np.array_equal(decoding.decode_grayscale(split), decoding.decode_grayscale(data))


def test_a_progressive_jpeg_with_typical_scans_is_read():
    photo = images.encode(images.drawn_digit(side=1000).convert("RGB"), "JPEG", progressive=True)
    assert 5 <= photo.count(b"\xff\xda") <= 12
    assert preparation.prepare_upload(photo).shape == (28, 28)


def test_the_pixels_of_a_whole_request_are_bounded(client):
    large = images.encode(images.drawn_digit(side=4000))  # 16 megapixels, allowed alone.
    assert post(client, files=[large]).status_code == 200
    assert_json_error(post(client, "/predict", files=[large, large]), 413, "too_many_pixels_in_request")


def test_jpeg_scans_count_in_the_request_budget(client):
    scans = images.jpeg_scan_bomb(1500, 100)  # Allowed alone; sixteen of them would be a CPU bomb.
    assert decoding.decoding_work(scans) == 1500 * 1500 * 10
    assert_json_error(post(client, "/predict", files=[scans] * 16), 413, "too_many_pixels_in_request")


@pytest.mark.parametrize("special", [np.inf, -np.inf, np.nan, 3e38, -3e38])
def test_float_tiff_with_extreme_values_is_a_json_4xx_or_a_digit(client, special):
    values = np.zeros((64, 64), dtype=np.float32)
    values[16:48, 30:34] = 1.0  # A "1".
    values[0, 0] = special
    buffer = io.BytesIO()
    Image.fromarray(values, mode="F").save(buffer, format="TIFF")
    response = post(client, files=[buffer.getvalue()])
    assert response.status_code == 200 or 400 <= response.status_code < 500
    assert response.is_json


def test_a_float_tiff_of_nothing_but_nan_is_no_digit(client):
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32), np.nan, dtype=np.float32), mode="F").save(buffer, format="TIFF")
    assert_json_error(post(client, files=[buffer.getvalue()]), 422, "no_digit_found")


EPS = textwrap.dedent("""\
    %!PS-Adobe-3.0 EPSF-3.0
    %%BoundingBox: 0 0 28 28
    newpath 14 4 moveto 14 24 lineto stroke
    showpage
    """).encode()


@pytest.mark.parametrize("data", [EPS, b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
                                  images.encode(images.drawn_digit(side=64), "PPM")])
def test_undocumented_formats_are_never_opened(client, tmp_path, monkeypatch, data):
    ran = tmp_path / "gs-was-run"
    fake_gs = tmp_path / "gs"
    fake_gs.write_text(f"#!/bin/sh\necho \"$@\" >> {ran}\nexit 1\n")
    fake_gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    response = post(client, files=[data])
    assert_json_error(response, 415, "unsupported_media_type")
    assert not ran.exists()
    assert str(tmp_path) not in response.get_data(as_text=True)


def test_no_reader_of_an_undocumented_format_looks_at_an_upload(client, monkeypatch):
    """Not even to read a header: Pillow's EPS and PPM readers are never handed the bytes."""
    handed = []
    for plugin in (EpsImagePlugin.EpsImageFile, PpmImagePlugin.PpmImageFile):
        monkeypatch.setattr(plugin, "_open", lambda image, plugin=plugin: handed.append(plugin.format))
    for data in (EPS, images.encode(images.drawn_digit(side=64), "PPM")):
        assert_json_error(post(client, files=[data]), 415, "unsupported_media_type")
    assert handed == []


def test_a_damaged_image_message_says_nothing_of_the_library(client):
    png = images.encode(images.drawn_digit(side=200))
    body = post(client, files=[png[: len(png) // 2]]).get_json()
    assert body["error"] == "corrupt_image"
    assert body["message"] == "The PNG image could not be decoded (damaged or truncated)."


def test_unknown_methods_fold_into_one_metric_label(client):
    for index in range(20):
        client.open("/upload", method=f"HOSTILE{chr(65 + index)}")
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "HOSTILE" not in metrics
    assert 'method="other"' in metrics


def test_a_filename_that_is_not_utf8_is_read(client):
    body, content_type = raw_multipart([
        (b'Content-Disposition: form-data; name="file"; filename="d\xe9j\xe0-vu \xff.png"\r\n'
         b"Content-Type: image/png", CANVAS)])
    response = client.post("/upload", data=body, content_type=content_type)
    assert response.status_code == 200 and response.get_json() == "7"


def test_too_many_parts_has_its_own_code(client):
    parts = [(b'Content-Disposition: form-data; name="f%d"' % index, b"x") for index in range(200)]
    body, content_type = raw_multipart(parts)
    assert_json_error(client.post("/upload", data=body, content_type=content_type), 413, "too_many_parts")


def test_a_field_too_large_has_its_own_code(client):
    body, content_type = raw_multipart([(b'Content-Disposition: form-data; name="note"', b"x" * 600_000)])
    assert_json_error(client.post("/upload", data=body, content_type=content_type), 413, "field_too_large")


def test_a_body_over_the_size_limit_is_file_too_large(client, app):
    body, content_type = raw_multipart([(b'Content-Disposition: form-data; name="file"; filename="big.png"',
                                         b"\0" * app.config["MAX_CONTENT_LENGTH"])])
    assert_json_error(client.post("/upload", data=body, content_type=content_type), 413, "file_too_large")


def test_too_many_files_has_its_own_code(client, app):
    assert_json_error(post(client, "/predict", files=[CANVAS] * (app.config["MAX_FILES"] + 1)),
                      413, "too_many_files")


@pytest.mark.parametrize("patched", [False, True])
def test_a_work_slot_pauses_for_other_greenlets_only_under_gevent(app, monkeypatch, patched):
    """gunicorn's gevent worker patches time.sleep; its sleep(0) lets waiting greenlets see the slot taken. Under
    threads a sleep(0) would only cost a timer's slack."""
    import time

    import gevent

    pauses = []
    sleep = gevent.sleep if patched else time.sleep
    monkeypatch.setattr(time, "sleep", lambda seconds: pauses.append(seconds) or sleep(seconds))
    monkeypatch.setattr(time.sleep, "__module__", sleep.__module__)
    admission.take_slot(app)
    admission.release_slot(app)
    assert pauses == ([0] if patched else [])


def test_work_over_capacity_is_a_fast_503_with_retry_after(client, app):
    slots = app.extensions[admission.EXTENSION_KEY]
    taken = 0
    wait, app.config["BUSY_WAIT"] = app.config["BUSY_WAIT"], 0.01
    try:
        while slots.acquire(blocking=False):
            taken += 1
        response = post(client)
        assert_json_error(response, 503, "overloaded")
        assert response.headers["Retry-After"] == "1"
        assert client.get("/health").status_code == 200  # Only work waits for a slot.
    finally:
        app.config["BUSY_WAIT"] = wait
        for _ in range(taken):
            slots.release()
    assert post(client).status_code == 200


def test_a_dead_processs_metrics_are_archived_and_its_files_removed(tmp_path):
    count = textwrap.dedent("""\
        import prometheus_client
        requests = prometheus_client.Counter("demo_total", "demo", ["kind"])
        requests.labels(kind="a").inc(3)
        print(__import__("os").getpid())
        """)
    totals = []
    for _ in range(2):
        pid = int(subprocess.run([sys.executable, "-c", count], check=True, capture_output=True, text=True,
                                 env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}).stdout)
        assert (tmp_path / f"counter_{pid}.db").exists()
        metrics_files.retire(pid, str(tmp_path))
        assert not (tmp_path / f"counter_{pid}.db").exists()
        totals.append(_demo_total(tmp_path))
    assert totals == [3.0, 6.0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["counter_archive.db"]


def _demo_total(path):
    """demo_total summed over the files in `path`, as /metrics would."""
    import prometheus_client
    from prometheus_client import multiprocess

    registry = prometheus_client.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(path))
    return registry.get_sample_value("demo_total", {"kind": "a"})
