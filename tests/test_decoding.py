"""Decoding: every format and mode Pillow reads becomes luminance in 0..1; hostile files become our errors."""

import os
import tracemalloc

import numpy as np
import pytest
from PIL import Image, ImageFile

from digits.imaging import decoding, exceptions
from testsupport import images


def luminance_of(data):
    """Decode and return the array."""
    return decoding.decode_grayscale(data)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"])
def test_common_formats_decode_to_the_same_picture(image_format):
    original = images.drawn_digit(side=64, width=5)
    decoded = luminance_of(images.encode(original.convert("RGB"), image_format))
    assert decoded.shape == (64, 64) and decoded.dtype == np.float32
    assert np.abs(decoded - np.asarray(original) / 255).mean() < 0.03


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "CMYK", "I", "F"])
def test_every_mode_becomes_unit_luminance(mode):
    original = images.drawn_digit(side=64, width=5)
    image = original.convert(mode)
    decoded = luminance_of(images.encode(image, "TIFF"))
    assert decoded.min() >= 0.0 and decoded.max() <= 1.0
    assert np.abs(decoded - np.asarray(original) / 255).mean() < 0.05


def test_sixteen_bit_png_uses_its_full_range():
    pixels = (np.asarray(images.drawn_digit(side=64, width=5), dtype=np.uint16) * 257)
    decoded = luminance_of(images.encode(Image.fromarray(pixels), "PNG"))
    assert decoded.max() == pytest.approx(1.0, abs=0.01)
    assert decoded.min() == pytest.approx(0.0, abs=0.01)


def test_a_large_sixteen_bit_image_is_shrunk_before_it_becomes_floats():
    """Shrunk in Pillow first, as 8-bit images are: NumPy never holds the full-size image (as floats, a
    25-megapixel one held 550 MiB); the result is the 8-bit image's shrunk by the same filter, within a level."""
    digit = images.drawn_digit(side=3000, width=90)
    data = images.encode(Image.fromarray(np.asarray(digit, dtype=np.uint16) * 257), "PNG")
    tracemalloc.start()
    try:
        decoded = luminance_of(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # NumPy's share; 3000x3000 as float64 alone would be 72 MB.
    eight_bit = np.asarray(digit.resize(decoded.shape[::-1], Image.Resampling.BOX), dtype=np.float32) / 255
    assert max(decoded.shape) == decoding.WORKING_SIDE and np.abs(decoded - eight_bit).max() < 1 / 255


def test_a_sixteen_bit_images_scale_comes_from_all_its_pixels():
    """Values up to 255 but for one pixel: 16 bits are in use, so the scale is 65535 even where shrinking
    averages that pixel away."""
    pixels = np.asarray(images.drawn_digit(side=600, width=30), dtype=np.uint16)  # 0 or 255: 8 bits' worth.
    pixels[0, 0] = 1000
    decoded = luminance_of(images.encode(Image.fromarray(pixels), "PNG"))
    assert max(decoded.shape) == decoding.WORKING_SIDE
    assert decoded.max() == pytest.approx(255 / 65535, abs=1e-3)


def test_a_large_gray_and_alpha_image_gives_what_its_rgba_conversion_gives():
    """LA is shrunk before it becomes RGBA (a quarter of the memory): the same pixels, to the bit."""
    rng = np.random.default_rng(9)
    gray = Image.fromarray(rng.integers(0, 256, (700, 900), dtype=np.uint8))
    alpha = Image.fromarray((rng.integers(0, 256, (700, 900)) * (rng.random((700, 900)) < 0.8)).astype(np.uint8))
    image = Image.merge("LA", [gray, alpha])
    assert np.array_equal(luminance_of(images.encode(image)), luminance_of(images.encode(image.convert("RGBA"))))


def test_transparent_black_strokes_are_laid_on_white():
    alpha = images.drawn_digit(side=64, width=5)
    rgba = Image.merge("RGBA", [Image.new("L", alpha.size, 0)] * 3 + [alpha])
    decoded = luminance_of(images.encode(rgba))
    assert decoded[0, 0] == pytest.approx(1.0)  # Transparent background shows as white paper ...
    assert decoded.min() == pytest.approx(0.0, abs=0.01)  # ... and the strokes stay black.


def test_transparent_white_strokes_are_laid_on_black():
    alpha = images.drawn_digit(side=64, width=5)
    rgba = Image.merge("RGBA", [Image.new("L", alpha.size, 255)] * 3 + [alpha])
    decoded = luminance_of(images.encode(rgba))
    assert decoded[0, 0] == pytest.approx(0.0) and decoded.max() == pytest.approx(1.0, abs=0.01)


def test_animated_gif_reads_its_first_frame():
    frames = [images.drawn_digit(side=64, width=5), Image.new("L", (64, 64), 0)]
    data = images.encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert luminance_of(data).max() > 0.9


def test_large_images_are_shrunk_to_the_working_size():
    decoded = luminance_of(images.encode(images.drawn_digit(side=3000, width=90).convert("RGB"), "JPEG"))
    assert max(decoded.shape) <= decoding.WORKING_SIDE


@pytest.mark.parametrize(
    "data, error",
    [
        pytest.param(b"", exceptions.EmptyUpload, id="empty"),
        pytest.param(b"hello, this is text\n", exceptions.NotAnImage, id="text"),
        pytest.param(b"<html><body>hi</body></html>", exceptions.NotAnImage, id="html"),
        pytest.param(os.urandom(5000), exceptions.NotAnImage, id="random-bytes"),
        pytest.param(images.encode(images.drawn_digit())[:400], exceptions.CorruptImage, id="truncated-png"),
        pytest.param(images.encode(images.drawn_digit().convert("RGB"), "JPEG")[:300], exceptions.CorruptImage,
                     id="truncated-jpeg"),
        pytest.param(images.encode(images.drawn_digit(), "GIF")[:200], exceptions.CorruptImage, id="truncated-gif"),
        pytest.param(images.png_bomb(20000, 20000), exceptions.ImageTooLarge, id="png-bomb"),
        pytest.param(images.gif_bomb(60000, 60000), exceptions.ImageTooLarge, id="gif-bomb"),
        pytest.param(images.jpeg_bomb(60000, 60000), exceptions.ImageTooLarge, id="jpeg-bomb"),
    ],
)
def test_hostile_files_raise_our_own_errors(data, error):
    with pytest.raises(error):
        luminance_of(data)


@pytest.mark.parametrize("bomb", [images.png_bomb(13000, 13000), images.gif_bomb(13000, 13000)])
def test_a_bomb_is_refused_before_its_pixels_are_decoded(bomb, monkeypatch):
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decoded.append(image))
    with pytest.raises(exceptions.ImageTooLarge):
        luminance_of(bomb)  # 169 megapixels: 169 MB if it were decoded.
    assert decoded == []


def test_a_webp_counts_double_against_the_pixel_limit():
    """Pillow's WebP decoding peaks at about twice the memory a pixel of the other formats takes: a WebP may have
    half the pixels, refused from its header with a message that says so; the same pixels as a PNG pass."""
    image = images.drawn_digit(side=100).convert("RGB")
    webp, png = images.encode(image, "WEBP", lossless=True), images.encode(image)
    assert decoding.decode_grayscale(png, max_pixels=10_000).shape == (100, 100)
    assert decoding.decode_grayscale(webp, max_pixels=20_000).shape == (100, 100)
    with pytest.raises(exceptions.ImageTooLarge, match=r"at most 9,999 pixels are accepted for a WebP image\.$"):
        decoding.decode_grayscale(webp, max_pixels=19_999)
    assert decoding.decoding_work(webp, 20_000) == 10_000 and decoding.decoding_work(webp, 19_999) == 0


def test_a_tiny_webp_of_many_pixels_is_refused_before_its_pixels_are_decoded(monkeypatch):
    """A 5000x5000 WebP of one colour is a few dozen bytes, inside the 25-megapixel limit for other formats; decoding
    it would hold about 400 MiB at once. Refused from its header, never loaded."""
    data = images.encode(Image.new("L", (5000, 5000)), "WEBP", lossless=True, method=0)
    assert len(data) < 1000
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decoded.append(image))
    with pytest.raises(exceptions.ImageTooLarge, match="5000x5000 pixels; at most 12,500,000 pixels"):
        luminance_of(data)
    assert decoded == []


def test_a_run_length_coded_bmp_decodes_to_its_pixels():
    pixels = np.asarray(images.drawn_digit(side=200, width=12))
    assert np.array_equal(luminance_of(images.bmp_run_length(pixels)), pixels / np.float32(255))


def test_a_bmp_of_too_many_bytes_of_runs_is_refused_before_it_is_opened(monkeypatch):
    """Pillow decodes the runs in Python: past MAX_BMP_RUN_BYTES (2 MB, as dear as the dearest PNG) the file is
    refused from its header, never opened; at the limit it decodes."""
    data = images.bmp_run_length(np.asarray(images.drawn_digit(side=200, width=12)), run=2)
    run_bytes = len(data) - (14 + 40 + 1024)
    monkeypatch.setattr(decoding, "MAX_BMP_RUN_BYTES", run_bytes)
    assert luminance_of(data).shape == (200, 200)
    monkeypatch.setattr(decoding, "MAX_BMP_RUN_BYTES", run_bytes - 1)
    opened = []
    monkeypatch.setattr(Image, "open", lambda *args, **kwargs: opened.append(args))
    with pytest.raises(exceptions.TooManyChunks, match="run-length-coded pixels take more than"):
        luminance_of(data)
    assert opened == [] and decoding.decoding_work(data) == 0


@pytest.mark.parametrize("size", [(1, 1), (1, 200), (200, 1)])
def test_degenerate_sizes_decode(size):
    assert luminance_of(images.encode(Image.new("L", size, 255))).shape == (size[1], size[0])
