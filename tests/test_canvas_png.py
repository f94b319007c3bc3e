"""canvas_png decodes an opaque gray RGBA PNG's gray channel, and an 8-bit grayscale PNG, exactly, whatever filters
they use, and takes no other PNG; a small one (and a small opaque gray RGB or gray-alpha PNG) decoded whole, a
larger one from its filtered bytes, by the compiled module or by NumPy. Each test runs on every path that takes
its images."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from digits.imaging import canvas_png
from testsupport import images


@pytest.fixture(autouse=True, params=["whole", "compiled", "numpy"])
def path(request, monkeypatch):
    """Which way the (small) test images are decoded: whole by libspng, or from their filtered bytes as a canvas,
    by the compiled module (where it is built) or by NumPy and libspng."""
    if request.param == "compiled" and canvas_png._png_rows is None:
        pytest.skip("digits/imaging/_png_rows.c is not compiled here (pip install -e . with a C compiler builds it)")
    if request.param != "whole":
        monkeypatch.setattr(canvas_png, "SMALL_PIXELS", 0)
    if request.param == "numpy":
        monkeypatch.setattr(canvas_png, "_png_rows", None)
    return request.param


def paeth(left, above, above_left):
    """PNG's Paeth predictor, element-wise on int arrays."""
    estimate = left + above - above_left
    to_left, to_above, to_above_left = (np.abs(estimate - v) for v in (left, above, above_left))
    return np.where((to_left <= to_above) & (to_left <= to_above_left), left,
                    np.where(to_above <= to_above_left, above, above_left))


def filter_rows(pixels, kinds):
    """PNG's filtered rows of an (H, W, 4) or (H, W) uint8 image, row r filtered with kinds[r] (0 None ... 4 Paeth)."""
    raw = pixels.reshape(pixels.shape[0], -1).astype(np.int64)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    above_rows = np.vstack([np.zeros_like(raw[:1]), raw[:-1]])
    rows = []
    for row, above, kind in zip(raw, above_rows, kinds):
        left = np.concatenate([np.zeros(channels, np.int64), row[:-channels]])
        above_left = np.concatenate([np.zeros(channels, np.int64), above[:-channels]])
        prediction = [0, left, above, (left + above) // 2, paeth(left, above, above_left)][kind]
        rows.append(bytes([kind]) + ((row - prediction) % 256).astype(np.uint8).tobytes())
    return b"".join(rows)


def chunk(kind, body):
    return struct.pack(">I4s", len(body), kind) + body + struct.pack(">I", zlib.crc32(kind + body))


def png(pixels, kinds, interlace=0, extra=b"", stream=None):
    """An RGBA PNG of (H, W, 4) pixels, or a grayscale one of (H, W), with the given row filters (or the given
    zlib stream), extra chunks first."""
    height, width = pixels.shape[:2]
    colour_type = 0 if pixels.ndim == 2 else 6
    header = chunk(b"IHDR", struct.pack(">II5B", width, height, 8, colour_type, 0, 0, interlace))
    stream = zlib.compress(filter_rows(pixels, kinds)) if stream is None else stream
    return canvas_png.SIGNATURE + header + extra + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


def gray_rgba(gray):
    """An (H, W) uint8 array as opaque gray RGBA pixels."""
    return np.stack([gray, gray, gray, np.full_like(gray, 255)], axis=-1)


def canvas_like(rng, height, width):
    """Black with a few soft white strokes, as a browser canvas drawing is."""
    gray = np.zeros((height, width), np.uint8)
    for _ in range(3):
        top, left = int(rng.integers(0, height)), int(rng.integers(0, width))
        gray[top : top + int(rng.integers(1, height)), left : left + int(rng.integers(1, 6))] = 255
        gray[top : top + 3, left : left + int(rng.integers(1, width))] = int(rng.integers(1, 256))
    return gray


@pytest.mark.parametrize("seed", range(12))
def test_every_filter_type_decodes_exactly(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 70, size=2))
    gray = canvas_like(rng, height, width) if seed % 2 else rng.integers(0, 256, (height, width), dtype=np.uint8)
    kinds = rng.integers(0, 5, height) if seed > 1 else np.full(height, seed * 4)  # All None; all Paeth.
    for pixels in (gray_rgba(gray), gray):  # A canvas, and a grayscale PNG.
        decoded = canvas_png.decode_gray(png(pixels, kinds))
        assert decoded is not None and decoded.dtype == np.uint8 and np.array_equal(decoded, gray)


@pytest.mark.parametrize("below", range(5))
def test_blank_rows_above_and_below_the_ink_decode_exactly(below):
    """Rows of zero bytes below the ink: filtered None or Sub they are black; Up, Average or Paeth may repeat
    the ink above them (a row equal to the one above, filtered Up, is all zero bytes)."""
    rng = np.random.default_rng(below)
    gray = np.zeros((24, 9), np.uint8)
    gray[6:11] = rng.integers(1, 256, (5, 9), dtype=np.uint8)
    gray[11:14] = gray[10]  # Repeated rows: zero bytes under Up.
    kinds = np.concatenate([rng.integers(0, 5, 11), [2, 2, 2], np.full(10, below)])
    for pixels in (gray_rgba(gray), gray):
        decoded = canvas_png.decode_gray(png(pixels, kinds))
        assert decoded is not None and np.array_equal(decoded, gray)
    blank = np.zeros((5, 7), np.uint8)
    for pixels in (gray_rgba(blank), blank):
        assert np.array_equal(canvas_png.decode_gray(png(pixels, rng.integers(0, 5, 5))), blank)


def test_the_real_chromium_canvas_is_decoded_as_pillow_decodes_it():
    data = images.CHROMIUM_CANVAS.read_bytes()
    expected = np.asarray(Image.open(io.BytesIO(data)))[..., 0]
    assert np.array_equal(canvas_png.decode_gray(data), expected)


def test_pillow_encoded_canvases_and_grayscale_pngs_are_decoded_as_pillow_decodes_them():
    rng = np.random.default_rng(5)
    for level in range(10):
        gray = canvas_like(rng, 90, 120)
        for image in (Image.fromarray(gray).convert("RGBA"), Image.fromarray(gray)):
            data = images.encode(image, compress_level=level)
            assert np.array_equal(canvas_png.decode_gray(data), gray)
            assert np.array_equal(canvas_png.decode_gray(data), np.asarray(Image.open(io.BytesIO(data)).convert("L")))


def test_grayscale_pngs_with_transparency_or_more_bits_are_left_to_the_general_path():
    gray = canvas_like(np.random.default_rng(6), 20, 30)
    image = Image.fromarray(gray)
    assert canvas_png.decode_gray(images.encode(image)) is not None
    others = {
        "a transparent gray level": images.encode(image, transparency=0),
        "16 bits": images.encode(Image.fromarray(gray.astype(np.uint16) * 257)),
        "a palette": images.encode(image.convert("P")),
        "one bit": images.encode(image.convert("1")),
        "interlaced": png(gray, [1] * 20, interlace=1),
    }
    for name, data in others.items():
        assert canvas_png.decode_gray(data) is None, name


def test_small_opaque_gray_rgb_and_gray_alpha_pngs_are_decoded_whole_and_larger_ones_left_alone(path):
    gray = canvas_like(np.random.default_rng(8), 40, 50)
    image = Image.fromarray(gray)
    for mode in ("RGB", "LA"):
        data = images.encode(image.convert(mode))
        decoded = canvas_png.decode_gray(data)
        if path != "whole":
            assert decoded is None, mode
        else:
            assert np.array_equal(decoded, gray) and decoded.flags.c_contiguous, mode
            assert np.array_equal(decoded, np.asarray(Image.open(io.BytesIO(data)).convert("L")))
    large = Image.fromarray(np.tile(gray, (3, 3)))  # 120x150: more than SMALL_PIXELS.
    for mode in ("RGB", "LA"):
        assert canvas_png.decode_gray(images.encode(large.convert(mode))) is None, mode


@pytest.mark.parametrize("where", [(0, 0), (0, 5), (3, 0), (7, 9)])
@pytest.mark.parametrize("change", ["green", "blue", "alpha"])
def test_one_pixel_not_gray_or_not_opaque_in_a_small_rgb_or_gray_alpha_png_is_refused(where, change, path):
    if path != "whole":
        pytest.skip("RGB and gray-alpha PNGs are only decoded whole")
    gray = canvas_like(np.random.default_rng(1), 10, 12)
    bands = [gray, np.full_like(gray, 255)] if change == "alpha" else [gray, gray.copy(), gray.copy()]
    changed = bands[{"alpha": 1, "green": 1, "blue": 2}[change]]
    changed[where] ^= 1
    image = Image.merge("LA" if change == "alpha" else "RGB", [Image.fromarray(band) for band in bands])
    assert canvas_png.decode_gray(images.encode(image)) is None


@pytest.mark.parametrize("kind", range(5))
@pytest.mark.parametrize("where", [(0, 0), (0, 5), (3, 0), (7, 9)])
@pytest.mark.parametrize("change", ["green", "blue", "alpha"])
def test_one_pixel_not_gray_or_not_opaque_is_refused(kind, where, change):
    gray = canvas_like(np.random.default_rng(1), 10, 12)
    pixels = gray_rgba(gray)
    channel = {"green": 1, "blue": 2, "alpha": 3}[change]
    pixels[where + (channel,)] ^= 1
    assert canvas_png.decode_gray(png(pixels, [kind] * 10)) is None


def test_other_pngs_and_damaged_ones_are_refused():
    pixels = gray_rgba(canvas_like(np.random.default_rng(2), 20, 30))
    good = png(pixels, [2] * 20)
    stream = zlib.compress(filter_rows(pixels, [2] * 20))
    unknown_filter = bytearray(filter_rows(pixels, [2] * 20))
    unknown_filter[19 * (1 + 30 * 4)] = 5  # The last row's filter type: there are five, 0 to 4.
    damaged_text = bytearray(chunk(b"tEXt", b"a\x00b"))
    damaged_text[-1] ^= 1  # Its CRC.
    damaged_text = bytes(damaged_text)
    flipped = bytearray(good)
    flipped[-30] ^= 0xFF  # Inside IDAT: its CRC no longer matches.
    refused = {
        "interlaced": png(pixels, [2] * 20, interlace=1),
        "exif": png(pixels, [2] * 20, extra=chunk(b"eXIf", b"MM\x00*")),
        "damaged text": png(pixels, [2] * 20, extra=damaged_text),
        "damaged": bytes(flipped),
        "truncated": good[:-20],
        "short stream": png(pixels, [2] * 20, stream=zlib.compress(filter_rows(pixels[:-1], [2] * 19))),
        "long stream": png(pixels, [2] * 20, stream=zlib.compress(filter_rows(pixels, [2] * 20) + b"\0")),
        "data after the stream": png(pixels, [2] * 20, stream=stream + b"\0"),
        "bad checksum": png(pixels, [2] * 20, stream=stream[:-1] + bytes([stream[-1] ^ 1])),
        "unknown filter": png(pixels, [2] * 20, stream=zlib.compress(bytes(unknown_filter))),
        "jpeg": images.encode(Image.fromarray(pixels[..., 0]), "JPEG"),
    }
    for name, data in refused.items():
        assert canvas_png.decode_gray(data) is None, name
    assert canvas_png.decode_gray(good) is not None


def test_a_png_larger_than_a_canvas_is_left_to_the_general_path(monkeypatch):
    pixels = gray_rgba(canvas_like(np.random.default_rng(3), 20, 30))
    assert canvas_png.decode_gray(png(pixels, [1] * 20)) is not None
    monkeypatch.setattr(canvas_png, "MAX_PIXELS", 20 * 30 - 1)
    assert canvas_png.decode_gray(png(pixels, [1] * 20)) is None


def test_the_size_is_read_from_a_png_header_as_pillow_reads_it():
    for image in (Image.new("L", (28, 28)), Image.new("RGBA", (400, 300)), Image.new("P", (1, 7))):
        data = images.encode(image)
        assert canvas_png.png_size(data) == Image.open(io.BytesIO(data)).size
    data = images.encode(Image.new("L", (28, 28)))
    damaged = data[:20] + b"\xff" + data[21:]  # Inside IHDR: its CRC no longer matches.
    for other in (damaged, data[:30], images.encode(Image.new("L", (28, 28)), "JPEG"), b""):
        assert canvas_png.png_size(other) is None
