"""The preparation functions on synthetic cases: every variant of a digit gives the same 28x28 image."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps
from scipy import ndimage

from digits.imaging import exceptions, preparation
from testsupport import images

TOLERANCE = 0.06  # Mean absolute difference allowed between two preparations of the same digit.


def prepared(image):
    """Encode as PNG and run the whole upload path."""
    return preparation.prepare_upload(images.encode(image))


@pytest.fixture(scope="module")
def reference():
    """A white-on-black "7" in the middle of a 400x400 canvas, prepared."""
    return prepared(images.drawn_digit(box=(0.25, 0.25, 0.75, 0.75)))


def close(a, b):
    """Mean absolute pixel difference."""
    return float(np.abs(a - b).mean())


def test_result_follows_mnist_conventions(reference):
    assert reference.shape == (28, 28) and reference.dtype == np.float32
    assert reference.min() >= 0 and reference.max() == pytest.approx(1.0, abs=0.05)
    rows, cols = np.nonzero(reference > 0)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 <= preparation.DIGIT_BOX + 1
    center = ndimage.center_of_mass(reference)
    assert center == pytest.approx((preparation.CENTER, preparation.CENTER), abs=0.5)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda: images.drawn_digit(box=(0.0, 0.0, 0.5, 0.5)), id="shifted-to-corner"),
        pytest.param(lambda: images.drawn_digit(box=(0.4, 0.5, 0.6, 0.7), width=6), id="small"),
        pytest.param(lambda: images.drawn_digit(box=(0.05, 0.05, 0.95, 0.95), width=27), id="large"),
        pytest.param(lambda: images.drawn_digit(side=1200, width=45, box=(0.25, 0.25, 0.75, 0.75)), id="high-res"),
        pytest.param(lambda: images.drawn_digit(ink=20, paper=235, box=(0.25, 0.25, 0.75, 0.75)), id="inverted"),
        pytest.param(lambda: images.drawn_digit(side=60, width=3, box=(0.25, 0.25, 0.75, 0.75)), id="tiny-image"),
    ],
)
def test_variants_prepare_like_the_centred_original(reference, variant):
    assert close(prepared(variant()), reference) < TOLERANCE


def test_noisy_unevenly_lit_photo_prepares_like_the_original(reference):
    rng = np.random.default_rng(0)
    ink = np.asarray(images.drawn_digit(box=(0.3, 0.2, 0.8, 0.7)), dtype=np.float32) / 255
    light = np.linspace(0.95, 0.6, 400)[None, :] * np.ones((400, 1))  # Lit from the left.
    photo = light * (1 - 0.8 * ink) + rng.normal(0, 0.03, ink.shape)
    jpeg = images.encode(Image.fromarray((np.clip(photo, 0, 1) * 255).astype(np.uint8)), "JPEG", quality=75)
    assert close(preparation.prepare_upload(jpeg), reference) < TOLERANCE


def test_transparent_png_with_black_strokes_is_read_as_ink(reference):
    alpha = images.drawn_digit(box=(0.25, 0.25, 0.75, 0.75))
    rgba = Image.merge("RGBA", [Image.new("L", alpha.size, 0)] * 3 + [alpha])  # Black everywhere.
    assert close(prepared(rgba), reference) < TOLERANCE


def test_exif_rotated_photo_is_turned_upright(reference):
    upright = images.drawn_digit(ink=0, paper=255, box=(0.25, 0.25, 0.75, 0.75))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # What the camera stored ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... and the tag that says: turn 90 degrees clockwise to view.
    jpeg = images.encode(stored.convert("RGB"), "JPEG", quality=95, exif=exif.tobytes())
    assert ImageOps.exif_transpose(Image.open(io.BytesIO(jpeg))).size == upright.size
    assert close(preparation.prepare_upload(jpeg), reference) < TOLERANCE


def test_specks_and_ruled_lines_at_the_edges_are_ignored(reference):
    image = images.drawn_digit(box=(0.25, 0.25, 0.75, 0.75))
    draw = ImageDraw.Draw(image)
    draw.line([(0, 20), (399, 20)], fill=255, width=4)  # A ruled line along the top edge.
    draw.rectangle((0, 0, 399, 399), outline=255, width=3)  # A frame.
    for x, y in [(40, 360), (370, 60), (350, 350)]:
        draw.ellipse((x, y, x + 4, y + 4), fill=255)  # Specks.
    assert close(prepared(image), reference) < TOLERANCE


def test_the_recipe_leaves_mnist_digits_nearly_unchanged(mnist):
    digits = preparation.scale_pixels(mnist.x_test[:500])
    differences = np.array([close(preparation.apply_recipe(digit), digit) for digit in digits])
    assert np.median(differences) < 0.005
    assert np.mean(differences < 0.02) > 0.95


def test_every_mnist_digit_is_read_as_it_is(mnist):
    digits = preparation.scale_pixels(np.concatenate([mnist.x_train, mnist.x_test]))
    assert all(preparation.is_mnist_digit(digit) for digit in digits)
    prepared_digit = preparation.normalize_digit(digits[0])
    assert np.array_equal(prepared_digit, digits[0]) and prepared_digit is not digits[0]
    assert np.array_equal(preparation.prepare_upload(images.png_bytes(mnist.x_test[0])), digits[-10000])


def small_in_the_middle(digit):
    """The digit shrunk to half its size, in the middle of a black 28x28."""
    half = np.asarray(Image.fromarray(digit).resize((14, 14), Image.Resampling.BILINEAR), dtype=np.float32)
    return np.pad(half, 7)


@pytest.mark.parametrize("variant", [
    pytest.param(lambda digit: np.roll(digit, 3, axis=1), id="off-centre"),
    pytest.param(lambda digit: 1.0 - digit, id="black-on-white"),
    pytest.param(small_in_the_middle, id="small"),
    pytest.param(lambda digit: digit * 0.5, id="faint"),
    pytest.param(lambda digit: np.clip(digit + np.random.default_rng(3).uniform(0, 0.05, digit.shape), 0, 1),
                 id="noisy-background"),
])
def test_a_28x28_image_in_another_format_gets_the_recipe(mnist, variant):
    original = next(digit for digit in preparation.scale_pixels(mnist.x_test[:50])
                    if not digit[:, :4].any() and not digit[:, -4:].any())  # Room to move it sideways.
    image = variant(original).astype(np.float32)
    assert not preparation.is_mnist_digit(image)
    assert np.array_equal(preparation.normalize_digit(image), preparation.apply_recipe(image))
    assert close(preparation.normalize_digit(image), preparation.apply_recipe(original)) < TOLERANCE


@pytest.mark.parametrize(
    "blank",
    [
        pytest.param(np.zeros((400, 400)), id="black-canvas"),
        pytest.param(np.ones((50, 80)), id="white"),
        pytest.param(np.full((30, 30), 0.5), id="gray"),
        pytest.param(np.random.default_rng(1).normal(0.8, 0.02, (300, 300)), id="paper-noise"),
        pytest.param(np.linspace(0.2, 0.9, 300)[None, :] * np.ones((200, 1)), id="gradient"),
        pytest.param(np.zeros((1, 1)), id="one-pixel"),
    ],
)
def test_images_without_ink_are_refused(blank):
    with pytest.raises(exceptions.NoDigitFound):
        preparation.normalize_digit(np.clip(blank, 0, 1))


def test_scale_pixels_maps_uint8_to_unit_range():
    assert preparation.scale_pixels(np.array([0, 255], dtype=np.uint8)).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("shape", [(1, 1), (2, 5), (7, 3), (31, 40), (80, 57)])
def test_morphology_is_scipys(shape):
    """The shifted-view morphology gives SciPy's pixels exactly: masks grown and eroded, strokes redrawn."""
    rng = np.random.default_rng(sum(shape))
    for density in (0.05, 0.3, 0.7):
        mask = rng.random(shape) < density
        for pixels in (1, 2, 3):
            assert np.array_equal(preparation.grow(mask, pixels), ndimage.binary_dilation(mask, iterations=pixels))
        assert np.array_equal(preparation._erode(mask), ndimage.binary_erosion(mask))
        image = (rng.random(shape) * mask).astype(np.float32)
        for radius in (0.5, 1.3, 2.6, 4.0):
            reach = int(np.ceil(radius))
            yy, xx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
            disk = xx * xx + yy * yy <= radius * radius + 0.25
            assert np.array_equal(preparation._disk_filter(image, disk, np.maximum),
                                  ndimage.grey_dilation(image, footprint=disk))
            assert np.array_equal(preparation._disk_filter(image, disk, np.minimum),
                                  ndimage.grey_erosion(image, footprint=disk))


def test_reflect_padding_reads_past_the_edges_as_scipy_does():
    """SciPy's "reflect" is NumPy's "symmetric": every reach short of each side, on tall, wide and square images."""
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (2, 5), (5, 2), (7, 3), (6, 6)]:
        image = rng.random(shape).astype(np.float32)
        for reach in range(min(shape)):
            assert np.array_equal(preparation._reflect_pad(image, reach), np.pad(image, reach, mode="symmetric"))


@pytest.mark.parametrize("seed", range(20))
def test_strokes_are_measured_as_scipy_measures_them(seed):
    """Areas and boxes of 1 to 6 strokes, one by one (few) or all at once (many): SciPy's and NumPy's."""
    rng = np.random.default_rng(seed)
    ink = np.zeros((int(rng.integers(5, 60)), int(rng.integers(5, 60))), np.float32)
    for _ in range(seed % 6 + 1):
        top, left = int(rng.integers(0, ink.shape[0])), int(rng.integers(0, ink.shape[1]))
        ink[top : top + int(rng.integers(1, 9)), left : left + int(rng.integers(1, 9))] = rng.uniform(0.4, 1)
    labels, count, areas, boxes = preparation.label_strokes(ink)
    expected_labels, expected_count = ndimage.label(ink > preparation.INK_THRESHOLD, structure=np.ones((3, 3)))
    assert count == expected_count and np.array_equal(labels, expected_labels)
    assert np.array_equal(areas, np.bincount(expected_labels.ravel())[1:])
    assert boxes == ndimage.find_objects(expected_labels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_median_is_numpys(dtype):
    rng = np.random.default_rng(8)
    for size in [1, 2, 3, 4, 5, 100, 1023, 1024]:
        for drawn in (rng.random(size), rng.integers(0, 5, size) / 4, rng.random((size, 3))):
            values = drawn.astype(dtype)
            median = preparation._median(values)
            assert median == np.median(values) and median.dtype == np.median(values).dtype


def test_center_of_mass_is_scipys():
    """The same floats as SciPy's, on the shapes and values fit_and_center gives it."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        shape = tuple(int(v) for v in rng.integers(1, 21, size=2))
        image = (rng.random(shape) * (rng.random(shape) < 0.6)).astype(np.float32)
        image[0, 0] += 0.1  # Never all zero: fit_and_center refuses that first.
        assert preparation._center_of_mass(image) == ndimage.center_of_mass(image)


def test_resize_is_pillows_fromarray_and_asarray():
    """_resize gives what Pillow's fromarray, resize and asarray give, for float32 and float64 crops (views, as
    preparation passes them), shrunk, enlarged and kept at their size."""

    def reference(image, scale, method):
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        return np.clip(np.asarray(Image.fromarray(image).resize(size, method)), 0.0, 1.0)

    rng = np.random.default_rng(0)
    for _ in range(1000):
        height, width = (int(v) for v in rng.integers(1, 60, 2))
        values = rng.random((height + 5, width + 5)) * 1.4 - 0.2  # Some outside 0..1, as after a fit.
        crop = values.astype(rng.choice([np.float32, np.float64]))[2 : 2 + height, 3 : 3 + width]
        scale = float(rng.choice([1.0, 4.0, 0.25, rng.uniform(0.1, 5.0), 20 / max(height, width)]))
        method = rng.choice([Image.Resampling.BILINEAR, Image.Resampling.BICUBIC])
        expected = reference(crop, scale, method)
        resized = preparation._resize(crop, scale, method)
        assert resized.dtype == expected.dtype and np.array_equal(resized, expected), (height, width, scale)
