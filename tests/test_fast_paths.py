"""The fast paths for a browser canvas give the general paths' results, bit for bit, and step aside otherwise."""

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from digits.imaging import canvas_png, decoding, exceptions, preparation, segmentation
from testsupport import images, numbers, synthetic


def general_decode(data, monkeypatch):
    """decode_grayscale with the canvas fast path switched off."""
    with monkeypatch.context() as patched:
        patched.setattr(decoding, "_decode_canvas", lambda *args: None)
        return decoding.decode_grayscale(data)


def general_normalize(gray):
    """apply_recipe's general path, step by step."""
    ink = preparation.flatten_background(preparation.ink_positive(gray))
    return preparation.fit_and_center(ink, preparation.digit_mask(ink))


def outcome(function, *args):
    """A function's result, or the type and message of our exception."""
    try:
        return function(*args)
    except exceptions.DigitInputError as error:
        return type(error), str(error)


def assert_same(fast, general):
    """Both arrays equal to the bit, or both the same refusal."""
    if isinstance(general, np.ndarray):
        assert isinstance(fast, np.ndarray) and fast.dtype == general.dtype and np.array_equal(fast, general)
    else:
        assert fast == general


def as_rgba_png(data):
    """An image re-encoded as Chromium encodes a canvas: RGBA, alpha 255."""
    return images.encode(Image.open(io.BytesIO(data)).convert("RGBA"))


def chromium_canvas():
    """The real canvas PNG from Chromium, or a drawn stand-in where the shared assets are absent."""
    path = images.CHROMIUM_CANVAS
    return path.read_bytes() if path.exists() else images.canvas_png()


def test_the_real_chromium_canvas_takes_both_fast_paths(monkeypatch):
    data = chromium_canvas()
    gray = decoding.decode_grayscale(data)
    assert decoding._decode_canvas(data, decoding.DEFAULT_MAX_PIXELS, decoding.WORKING_SIDE) is not None
    assert preparation._normalize_clean_canvas(gray) is not None
    assert np.array_equal(gray, general_decode(data, monkeypatch))
    assert np.array_equal(preparation.apply_recipe(gray), general_normalize(gray))


@pytest.fixture(scope="module")
def uploads(mnist):
    """Realistic uploads of every kind, and the canvas ones again as RGBA PNGs as Chromium sends them."""
    realistic = synthetic.realistic_set(mnist.x_test, mnist.y_test, count=120, seed=7)
    canvases = [as_rgba_png(data) for kind, _, data in realistic if kind == "canvas"]
    return [data for _, _, data in realistic] + canvases + [images.canvas_png(), chromium_canvas()]


def test_decoding_fast_path_matches_the_general_path(uploads, monkeypatch):
    fast_taken = 0
    for data in uploads:
        fast_taken += decoding._decode_canvas(data, decoding.DEFAULT_MAX_PIXELS, 256) is not None
        assert_same(outcome(decoding.decode_grayscale, data), outcome(general_decode, data, monkeypatch))
    assert fast_taken >= 20


def test_small_pngs_of_every_8_bit_type_decode_as_the_general_path_does(uploads, monkeypatch):
    """Small uploads (28x28 digits, tiny drawings, small scans) as grayscale, RGB, RGBA and gray-alpha PNGs, opaque
    and with one pixel see-through: the same pixels as Pillow's path; the opaque gray ones take the fast path."""
    small = [Image.open(io.BytesIO(data)) for data in uploads]
    small = [image.convert("L") for image in small if image.width * image.height <= canvas_png.SMALL_PIXELS]
    assert len(small) >= 10
    fast_taken = 0
    for gray in small:
        see_through = gray.convert("LA")
        see_through.putpixel((0, 0), (0, 128))
        for image in (gray, gray.convert("RGB"), gray.convert("RGBA"), gray.convert("LA"), see_through):
            data = images.encode(image)
            fast = decoding._decode_canvas(data, decoding.DEFAULT_MAX_PIXELS, 256)
            fast_taken += fast is not None
            assert (fast is None) == (image is see_through)
            assert_same(decoding.decode_grayscale(data), general_decode(data, monkeypatch))
    assert fast_taken == 4 * len(small)


def test_preparation_fast_path_matches_the_general_path(uploads):
    fast_taken = 0
    for data in uploads:
        gray = decoding.decode_grayscale(data)
        fast_taken += outcome(preparation._normalize_clean_canvas, gray) is not None
        assert_same(outcome(preparation.apply_recipe, gray), outcome(general_normalize, gray))
    assert fast_taken >= 20


def random_canvas(seed):
    """Strokes anywhere (near the edges too), either polarity, any flat background, sharp or soft, odd sizes."""
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(20, 300, size=2))
    paper = float(rng.choice([0.0, 1.0, rng.uniform(0, 1)]))
    ink = float(rng.choice([1.0 - paper, rng.uniform(0, 1)]))
    gray = np.full((height, width), paper, dtype=np.float32)
    for _ in range(int(rng.integers(1, 4))):
        top, left = int(rng.integers(0, height)), int(rng.integers(0, width))
        gray[top : top + int(rng.integers(1, height // 2 + 2)), left : left + int(rng.integers(1, 6))] = ink
        gray[top : top + int(rng.integers(1, 6)), left : left + int(rng.integers(1, width // 2 + 2))] = ink
    if rng.random() < 0.5:
        gray = ndimage.uniform_filter(gray, size=3)  # Soft, anti-aliased edges.
    return gray


@pytest.mark.parametrize("seed", range(60))
def test_preparation_fast_path_on_random_canvases(seed):
    gray = random_canvas(seed)
    assert_same(outcome(preparation.apply_recipe, gray), outcome(general_normalize, gray))


def test_a_colour_or_transparent_png_is_left_to_the_general_path(monkeypatch):
    drawn = images.drawn_digit(mode="RGBA")
    tinted = images.drawn_digit(mode="RGB", ink=(250, 80, 80)).convert("RGBA")
    see_through = drawn.copy()
    see_through.putalpha(200)
    for image in (tinted, see_through):
        data = images.encode(image)
        assert decoding._decode_canvas(data, decoding.DEFAULT_MAX_PIXELS, 256) is None
        assert np.array_equal(decoding.decode_grayscale(data), general_decode(data, monkeypatch))


def test_reading_a_line_on_the_canvas_window_matches_the_whole_image(mnist, monkeypatch):
    """Numbers and single digits on clean canvases: the same digits, boxes and cuts from the ink's window
    as from the whole image's ink."""
    uploads = [data for _, _, data in numbers.number_set(mnist.x_test, mnist.y_test, count=24, seed=3,
                                                       kinds=["canvas", "mnist"])]
    uploads += [chromium_canvas(), images.canvas_png()]

    def classify(digits):  # Any fixed function of the pixels will do: both paths must ask it the same.
        sums = digits.reshape(len(digits), -1) @ np.linspace(0.0, 1.0, 784 * 10).reshape(784, 10)
        return np.exp(sums) / np.exp(sums).sum(axis=1, keepdims=True)

    windowed = 0
    for data in uploads:
        windowed += preparation.clean_canvas_ink(decoding.decode_grayscale(data)) is not None
        fast = outcome(segmentation.prepare_number, data, decoding.DEFAULT_MAX_PIXELS, classify)
        with monkeypatch.context() as patched:
            patched.setattr(preparation, "clean_canvas_ink", lambda gray: None)
            general = outcome(segmentation.prepare_number, data, decoding.DEFAULT_MAX_PIXELS, classify)
        assert type(fast) is type(general) and len(fast) == len(general)
        if isinstance(general, tuple):
            assert fast == general
            continue
        for mine, reference in zip(fast, general):
            assert np.array_equal(mine.image, reference.image)
            assert (mine.box, mine.cut) == (reference.box, reference.cut)
    assert windowed >= len(uploads) // 2


@pytest.mark.parametrize("side", [300, 400, 512, 640, 1000, 1023])
def test_shrinking_only_the_inked_part_of_a_canvas_is_exact(side):
    """The canvas shrink resamples only around the ink, yet gives Pillow's whole-image shrink to the bit,
    for square and oblong canvases of many sizes (exact scales or not), ink near the edges or not."""
    rng = np.random.default_rng(side)
    for trial in range(6):
        height = side if trial % 2 == 0 else int(rng.integers(side // 2, side))
        gray = np.full((height, side), int(rng.choice([0, 255, rng.integers(0, 256)])), dtype=np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            top, left = int(rng.integers(0, height - 10)), int(rng.integers(0, side - 10))
            gray[top : top + int(rng.integers(2, height // 3)), left : left + int(rng.integers(2, side // 3))] = \
                rng.integers(0, 256)
        whole = np.asarray(decoding._shrink(Image.fromarray(gray), decoding.WORKING_SIDE), dtype=np.float32) / 255.0
        assert np.array_equal(decoding._shrink_canvas(gray, decoding.WORKING_SIDE), whole)


def test_the_flat_background_check_counts_what_the_median_finds():
    """_is_flat_at (a count) against _flat_background (a median), on samples with many ties, odd and even sizes."""
    rng = np.random.default_rng(5)
    flat = 0
    for _ in range(4000):
        size = int(rng.integers(1, 40))
        levels = rng.choice([0.0, 0.2, 1 / 255, 0.5, 1.0], size=int(rng.integers(1, 4)), replace=False)
        samples = rng.choice(levels, size=size, p=rng.dirichlet(np.ones(len(levels)))).astype(np.float32)
        expected = preparation._flat_background(samples.astype(np.float64))
        for value in map(np.float32, {*samples.tolist(), 0.0}):
            assert preparation._is_flat_at(samples, value) == (expected is not None and expected == value)
        flat += expected is not None
    assert 1000 < flat < 3000  # Both answers were tried often.
