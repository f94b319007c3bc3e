"""The model file: where it lives by default, and the training record stored inside it.

Serving reads the record (GET /model); training writes the file. Both go through here, so neither needs
the other.
"""

import json
import os
import pathlib

from digits import PROJECT_ROOT

DEFAULT_PATH = PROJECT_ROOT / "mnist-neural.h5"
METADATA_ATTRIBUTE = "digits_metadata"  # The training record, an HDF5 attribute of the file it describes.


class ModelLoadError(Exception):
    """The model file is missing, unreadable, or not a 28x28-image-to-10-digits classifier."""


def existing_file(model_path):
    """The model path, resolved, if it names a file; otherwise a ModelLoadError saying what it names instead."""
    path = pathlib.Path(model_path).resolve()
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder; give the model file itself (a .h5 file)")
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    return path


def read_metadata(model_path):
    """The training record saved inside a model file, or {} for a model that has none."""
    import h5py

    with h5py.File(model_path, "r") as h5:
        raw = h5.attrs.get(METADATA_ATTRIBUTE)
    return json.loads(raw) if raw else {}


def save_atomically(model, output, metadata):
    """Write a Keras model to a temporary file beside the target, record the metadata in it, rename into place."""
    import h5py

    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.stem + ".tmp.h5")
    try:
        model.save(temporary)
        with h5py.File(temporary, "a") as h5:
            h5.attrs[METADATA_ATTRIBUTE] = json.dumps(metadata)
        os.replace(temporary, output)  # Atomic on one filesystem: readers see the old file or the new one.
    finally:
        temporary.unlink(missing_ok=True)


def check(model_path):
    """Fail fast, without loading a model runtime, if the file is missing or is not a saved Keras model."""
    import h5py

    path = existing_file(model_path)
    try:
        with h5py.File(path, "r") as h5:
            if "model_config" not in h5.attrs:
                raise ValueError("it holds no Keras model")
    except Exception as error:  # h5py fails its own ways on a truncated or foreign file.
        raise ModelLoadError(f"could not read the model file {path}: {error}") from error
    return path
