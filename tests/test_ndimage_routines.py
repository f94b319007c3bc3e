"""SciPy's compiled ndimage routines, called directly, give scipy.ndimage's answers; anything else falls back."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from digits import PROJECT_ROOT
from digits.imaging import ndimage_routines, preparation


@pytest.fixture(scope="module")
def compiled():
    """The compiled routines, loaded as the module loads them."""
    routines = ndimage_routines.load()
    assert isinstance(routines, ndimage_routines.CompiledRoutines)
    return routines


def test_the_pinned_scipy_gives_the_compiled_routines():
    """With requirements.txt's SciPy the module uses the compiled routines (a fallback would cost start-up)."""
    assert isinstance(ndimage_routines._routines, ndimage_routines.CompiledRoutines)


@pytest.mark.parametrize("routines", [ndimage_routines.load(), ndimage_routines.PublicRoutines()],
                         ids=["compiled", "public"])
def test_labels_and_boxes_are_scipys(routines):
    """Random masks, sparse to dense, empty and full, thin and square: SciPy's labels, count and boxes."""
    rng = np.random.default_rng(11)
    shapes = [(1, 1), (1, 9), (9, 1), (0, 5), (3, 4), (28, 28), (61, 47), (256, 170)]
    for shape in shapes:
        for density in (0.0, 0.05, 0.3, 0.6, 1.0):
            mask = rng.random(shape) < density
            labels, count = routines.label(mask)
            expected, expected_count = ndimage.label(mask, structure=np.ones((3, 3)))
            assert count == expected_count and labels.dtype == expected.dtype
            assert np.array_equal(labels, expected)
            if count:
                assert routines.find_objects(labels, count) == ndimage.find_objects(expected)


@pytest.mark.parametrize("routines", [ndimage_routines.load(), ndimage_routines.PublicRoutines()],
                         ids=["compiled", "public"])
def test_filters_are_scipys(routines):
    """Column profiles as segmentation makes them (float32) and other real types, every length and window."""
    rng = np.random.default_rng(12)
    for length in (1, 2, 3, 7, 40, 301):
        for values in (rng.integers(0, 30, length).astype(np.float32), rng.random(length), rng.integers(0, 9, length)):
            smooth = routines.uniform_filter1d(values, 3)
            assert smooth.dtype == values.dtype
            assert np.array_equal(smooth, ndimage.uniform_filter1d(values, 3))
            for size in (1, 3, 5, 9, 31):
                assert np.array_equal(routines.minimum_filter1d(values, size), ndimage.minimum_filter1d(values, size))


@pytest.mark.parametrize("routines", [ndimage_routines.load(), ndimage_routines.PublicRoutines()],
                         ids=["compiled", "public"])
def test_disk_filters_are_scipys(routines):
    """Round footprints (preparation's) on images as small as the footprint's reach, or smaller: SciPy's
    grey dilation and erosion."""
    rng = np.random.default_rng(13)
    for shape in [(1, 1), (1, 6), (6, 1), (2, 3), (5, 4), (9, 12)]:
        image = (rng.random(shape) * (rng.random(shape) < 0.6)).astype(np.float32)
        for radius in (0.5, 1.0, 1.3, 2.6, 4.0, 6.2):
            disk = preparation._disk(radius)
            assert np.array_equal(routines.disk_filter(image, disk, minimum=False),
                                  ndimage.grey_dilation(image, footprint=disk))
            assert np.array_equal(routines.disk_filter(image, disk, minimum=True),
                                  ndimage.grey_erosion(image, footprint=disk))


def test_routines_that_do_not_load_fall_back_to_the_public_ones(monkeypatch):
    def missing(name):
        raise ImportError(f"no scipy.ndimage.{name}")

    monkeypatch.setattr(ndimage_routines, "_compiled_module", missing)
    assert isinstance(ndimage_routines.load(), ndimage_routines.PublicRoutines)


def test_routines_that_answer_the_known_case_wrongly_fall_back(monkeypatch, compiled):
    """A SciPy whose routine took its arguments in another order, say: caught by the known case, not served."""
    assert ndimage_routines.answers_known_case(compiled)
    monkeypatch.setattr(ndimage_routines.CompiledRoutines, "minimum_filter1d",
                        lambda self, values, size: ndimage.maximum_filter1d(values, size))
    assert not ndimage_routines.answers_known_case(
        ndimage_routines.CompiledRoutines(compiled._label_module, compiled._image_module))
    assert isinstance(ndimage_routines.load(), ndimage_routines.PublicRoutines)


def test_the_service_does_not_import_scipy_ndimage():
    """A worker's app loads only SciPy's two compiled modules: scipy.ndimage's package import is what the
    module exists to spare."""
    script = ("import sys; from digits.serving import service; service.create_app(); "
              "print(sorted(m for m in sys.modules if m.startswith('scipy.')))")
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=120, check=True)
    loaded = done.stdout.strip()
    assert "'scipy.ndimage._ni_label'" in loaded and "'scipy.ndimage._nd_image'" in loaded
    assert "'scipy.ndimage'" not in loaded and "'scipy.special'" not in loaded
