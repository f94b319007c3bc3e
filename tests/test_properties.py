"""Property-based fuzzing: whatever comes in, out comes a valid 28x28 digit or one of our own exceptions."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from digits.imaging import exceptions, preparation
from testsupport import images

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

SEEDS = [
    images.encode(images.drawn_digit(side=48, width=5), image_format)
    for image_format in ("PNG", "GIF", "BMP", "TIFF", "WEBP")
] + [images.encode(images.drawn_digit(side=48, width=5).convert("RGB"), "JPEG")]


def assert_valid_or_ours(data):
    """prepare_upload either returns a proper digit or raises a DigitInputError; nothing else escapes."""
    try:
        digit = preparation.prepare_upload(data, max_pixels=4_000_000)
    except exceptions.DigitInputError:
        return
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    assert np.all(np.isfinite(digit)) and digit.min() >= 0.0 and digit.max() <= 1.0


@FUZZ
@given(st.binary(max_size=4096))
def test_any_bytes(data):
    assert_valid_or_ours(data)


@FUZZ
@given(seed=st.sampled_from(SEEDS), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                                   max_size=8), cut=st.integers(0, 10**6))
def test_damaged_real_images(seed, flips, cut):
    data = bytearray(seed[: max(1, cut % (len(seed) + 1))])
    for position, value in flips:
        if data:
            data[position % len(data)] = value
    assert_valid_or_ours(bytes(data))


@FUZZ
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=64),
                  elements=st.floats(0, 1, width=32)))
def test_any_grayscale_array(gray):
    try:
        digit = preparation.normalize_digit(gray)
    except exceptions.NoDigitFound:
        return
    assert digit.shape == (28, 28) and np.all(np.isfinite(digit)) and 0.0 <= digit.min() <= digit.max() <= 1.0


@FUZZ
@given(width=st.integers(1, 3000), height=st.integers(1, 3000), mode=st.sampled_from(["L", "RGB", "RGBA", "P", "1"]))
def test_any_size_and_mode(width, height, mode):
    assert_valid_or_ours(images.encode(Image.new(mode, (width, height))))
