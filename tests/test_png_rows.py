"""The compiled module (digits/imaging/_png_rows.c) takes exactly the filtered rows canvas_png's NumPy path takes,
damaged or not, and gives the same pixels; it refuses buffers whose sizes do not match the image. Where it is not
built, the app says so when it starts."""

import logging

import numpy as np
import pytest

from digits.imaging import canvas_png
from tests.test_canvas_png import canvas_like, filter_rows, gray_rgba
from testsupport import images

png_rows = canvas_png._png_rows
needs_module = pytest.mark.skipif(
    png_rows is None, reason="digits/imaging/_png_rows.c is not compiled here (pip install -e . with a C compiler)")


def compiled(filtered, width, height, channels):
    """The compiled module's pixels, or None where it refuses the rows."""
    gray = np.empty((height, width), np.uint8)
    return gray if png_rows.gray_rows(filtered, width, height, channels, gray) else None


@needs_module
@pytest.mark.parametrize("seed", range(30))
def test_the_compiled_module_and_numpy_agree_on_every_filter_and_on_damaged_rows(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(2, 40, size=2))  # canvas_like draws on 2 or more.
    gray = canvas_like(rng, height, width) if seed % 2 else rng.integers(0, 256, (height, width), dtype=np.uint8)
    for pixels, channels in ((gray_rgba(gray), 4), (gray, 1)):
        filtered = filter_rows(pixels, rng.integers(0, 5, height))
        assert np.array_equal(compiled(filtered, width, height, channels), gray)
        assert np.array_equal(canvas_png._decode_filtered(filtered, width, height, channels), gray)
        for _ in range(25):  # One byte changed anywhere: a filter type, a channel, an alpha.
            damaged = bytearray(filtered)
            damaged[int(rng.integers(len(damaged)))] = int(rng.integers(256))
            ours, numpy_path = (decode(bytes(damaged), width, height, channels)
                                for decode in (compiled, canvas_png._decode_filtered))
            assert (ours is None) == (numpy_path is None)
            assert ours is None or np.array_equal(ours, numpy_path)


@needs_module
def test_the_real_chromium_canvas_rows_give_the_numpy_paths_pixels():
    data = images.CHROMIUM_CANVAS.read_bytes()
    width, height, channels, compressed = canvas_png._parse(data, canvas_png.MAX_PIXELS)
    filtered = canvas_png._inflate(compressed, height * (1 + channels * width))
    assert np.array_equal(compiled(filtered, width, height, channels),
                          canvas_png._decode_filtered(filtered, width, height, channels))


@needs_module
@pytest.mark.parametrize("args", [
    (b"\0" * 10, 2, 2, 4, bytearray(4)),  # Rows of 9 bytes need 18.
    (b"\0" * 18, 2, 2, 4, bytearray(3)),  # Four pixels need 4 bytes.
    (b"\0" * 14, 2, 2, 3, bytearray(4)),  # Three channels are not taken.
    (b"", 0, 0, 1, bytearray(0)),
    (b"\0" * 3, -1, -3, 1, bytearray(3)),
])
def test_buffers_that_do_not_match_the_image_are_refused(args):
    with pytest.raises(ValueError, match="gray_rows"):
        png_rows.gray_rows(*args)


@needs_module
def test_the_pixels_must_go_to_a_writable_buffer():
    with pytest.raises(TypeError):
        png_rows.gray_rows(b"\0" * 3, 1, 1, 4, bytes(1))


def test_an_app_without_the_compiled_module_says_so_when_it_starts(monkeypatch, caplog):
    from digits.serving import create_app

    monkeypatch.setattr(canvas_png, "_png_rows", None)
    with caplog.at_level(logging.WARNING, logger="digits.serving.service"):
        create_app({"WARM_UP": False, "ACCESS_LOG": False})
    assert "_png_rows.c is not compiled" in caplog.text
