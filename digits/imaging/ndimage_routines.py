"""The scipy.ndimage functions the service calls, from SciPy's compiled routines, without importing scipy.ndimage.

Importing scipy.ndimage costs each worker about 0.3 s of its start (0.5 s from a cold disk) and 17 MiB: its
array-API layer imports most of NumPy's submodules, numpy.f2py among them, and scipy.special. The functions
used here are argument checks around two compiled modules, `_ni_label` and `_nd_image`, which load alone in
milliseconds. So this module loads those from the installed SciPy (pinned in requirements.txt) and calls them
as scipy.ndimage's own functions do, with the arguments those pass for the calls made here.

Their calling conventions are SciPy's internals, not its public API: they are checked on a known case when
loaded, and if they cannot be loaded or answer it wrongly (another SciPy version), the public functions are
used instead, the same results at the usual import cost. tests/test_ndimage_routines.py compares both.
"""

import importlib.machinery
import importlib.util
import logging
import pathlib
import sys

import numpy as np

REFLECT = 2  # scipy.ndimage's code for mode="reflect", its filters' default.
EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)
EIGHT_NEIGHBOURS.flags.writeable = False

log = logging.getLogger(__name__)


class CompiledRoutines:
    """The module's functions by the compiled routines that scipy.ndimage's functions call, with their arguments."""

    def __init__(self, label_module, image_module):
        self._label_module, self._image_module = label_module, image_module

    def label(self, mask):
        """As ndimage.label: int32 output, and no call for an empty mask."""
        labels = np.empty(mask.shape, np.int32)
        if mask.size == 0:
            return labels, 0
        return labels, self._label_module._label(mask, EIGHT_NEIGHBOURS, labels)

    def find_objects(self, labels, count):
        """As ndimage.find_objects with max_label given."""
        return self._image_module.find_objects(labels, count)

    def uniform_filter1d(self, values, size):
        """As ndimage.uniform_filter1d: output of the input's type, axis 0, origin 0."""
        output = np.zeros(values.shape, values.dtype)
        self._image_module.uniform_filter1d(values, size, 0, output, REFLECT, 0.0, 0)
        return output

    def minimum_filter1d(self, values, size):
        """As ndimage.minimum_filter1d: the shared min-or-max routine, asked for the minimum (1)."""
        output = np.zeros(values.shape, values.dtype)
        self._image_module.min_or_max_filter1d(values, size, 0, output, REFLECT, 0.0, 0, 1)
        return output

    def disk_filter(self, image, footprint, minimum):
        """As ndimage.grey_erosion and grey_dilation with a footprint that is not all set (else they filter
        separably): the min-or-max routine with that footprint, reversed for dilation (a symmetric one is
        unchanged), origins 0 (dilation shifts them only for an even side)."""
        output = np.zeros(image.shape, image.dtype)
        footprint = np.ascontiguousarray(footprint, dtype=bool)
        self._image_module.min_or_max_filter(image, footprint, None, output, REFLECT, 0.0, [0, 0], int(minimum))
        return output


class PublicRoutines:
    """The module's functions by scipy.ndimage's public API: the fallback."""

    def __init__(self):
        from scipy import ndimage  # Imported only here: the fallback pays its cost, the usual path does not.

        self._ndimage = ndimage

    def label(self, mask):
        """ndimage.label with 8-connectivity."""
        return self._ndimage.label(mask, structure=EIGHT_NEIGHBOURS)

    def find_objects(self, labels, count):
        """ndimage.find_objects."""
        return self._ndimage.find_objects(labels, count)

    def uniform_filter1d(self, values, size):
        """ndimage.uniform_filter1d."""
        return self._ndimage.uniform_filter1d(values, size)

    def minimum_filter1d(self, values, size):
        """ndimage.minimum_filter1d."""
        return self._ndimage.minimum_filter1d(values, size)

    def disk_filter(self, image, footprint, minimum):
        """ndimage.grey_erosion or grey_dilation."""
        morphology = self._ndimage.grey_erosion if minimum else self._ndimage.grey_dilation
        return morphology(image, footprint=footprint)


def load():
    """CompiledRoutines if SciPy's compiled modules load and answer a known case as expected, else PublicRoutines."""
    try:
        routines = CompiledRoutines(_compiled_module("_ni_label"), _compiled_module("_nd_image"))
        if answers_known_case(routines):
            return routines
        log.warning("SciPy's compiled ndimage routines answered a known case wrongly; using scipy.ndimage")
    except Exception as error:  # Moved, renamed or changed in another SciPy version.
        log.warning("SciPy's compiled ndimage routines did not load (%s: %s); using scipy.ndimage",
                    type(error).__name__, error)
    return PublicRoutines()


def answers_known_case(routines):
    """Whether the routines give scipy.ndimage's answers on small cases worked out by hand."""
    mask = np.array([[1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 1, 0]], dtype=bool)  # Three blobs, one of them diagonal.
    labels, count = routines.label(mask)
    disk = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
    row = np.array([[0.0, 5.0, 1.0]], dtype=np.float32)  # One row: the disk reads it above and below (reflected).
    return (count == 3 and labels.tolist() == [[1, 1, 0, 0], [0, 0, 0, 2], [3, 0, 2, 0]]
            and routines.find_objects(labels, count) == [(slice(0, 1), slice(0, 2)), (slice(1, 3), slice(2, 4)),
                                                          (slice(2, 3), slice(0, 1))]
            and routines.uniform_filter1d(np.array([0.0, 3.0, 6.0, 9.0]), 3).tolist() == [1.0, 3.0, 6.0, 8.0]
            and routines.minimum_filter1d(np.array([3.0, 1.0, 2.0, 5.0]), 3).tolist() == [1.0, 1.0, 1.0, 2.0]
            and routines.disk_filter(row, disk, minimum=False).tolist() == [[5.0, 5.0, 5.0]]
            and routines.disk_filter(row, disk, minimum=True).tolist() == [[0.0, 0.0, 1.0]])


def _compiled_module(name):
    """SciPy's extension module scipy.ndimage.<name>, loaded from its file without running scipy.ndimage's
    package import (it needs only NumPy, and SciPy's top-level package, which is light)."""
    full_name = f"scipy.ndimage.{name}"
    if full_name in sys.modules:  # scipy.ndimage was imported already (training, tests): the same module.
        return sys.modules[full_name]
    scipy_spec = importlib.util.find_spec("scipy")  # Finds the package without importing it.
    folder = pathlib.Path(scipy_spec.submodule_search_locations[0], "ndimage")
    paths = [folder / (name + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES
             if (folder / (name + suffix)).is_file()]
    if not paths:
        raise ImportError(f"no {full_name} in {folder}")
    path = paths[0]
    loader = importlib.machinery.ExtensionFileLoader(full_name, str(path))
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(full_name, path, loader=loader))
    loader.exec_module(module)
    # Registered under its own name, so a later `import scipy.ndimage` uses this module rather than load it twice.
    sys.modules[full_name] = module
    return module


_routines = load()


def label(mask):
    """ndimage.label(mask, structure=EIGHT_NEIGHBOURS) of a 2-D boolean mask: (int32 labels, count)."""
    return _routines.label(mask)


def find_objects(labels, count):
    """ndimage.find_objects(labels, count): each label's box as a tuple of slices, for count >= 1."""
    return _routines.find_objects(labels, count)


def uniform_filter1d(values, size):
    """ndimage.uniform_filter1d(values, size) of a 1-D real array, edges reflected."""
    return _routines.uniform_filter1d(values, size)


def minimum_filter1d(values, size):
    """ndimage.minimum_filter1d(values, size) of a 1-D real array, edges reflected."""
    return _routines.minimum_filter1d(values, size)


def disk_filter(image, footprint, minimum):
    """ndimage.grey_erosion (minimum) or grey_dilation (not minimum) of a 2-D image with a symmetric, odd-sided
    footprint that is not all set."""
    return _routines.disk_filter(image, footprint, minimum)
