"""The model files: the trained .h5, the .onnx exported from it, and the facts recorded in each.

Training writes both files (the .h5, then its export); serving runs the export and checks, by the .h5's
sha256 recorded inside it, that it was made from the .h5 beside it. Both go through here, so neither needs
the other.
"""

import hashlib
import json
import os
import pathlib

from digits import PROJECT_ROOT

DEFAULT_PATH = PROJECT_ROOT / "mnist-neural.h5"
METADATA_ATTRIBUTE = "digits_metadata"  # The training record, an HDF5 attribute of the file it describes.
EXPORT_SUFFIX = ".onnx"
EXPORT_COMMAND = "python3 -m digits.training.export"
# Keys of the export's ONNX metadata_props.
SOURCE_SHA256_KEY = "digits_source_sha256"  # The sha256 of the .h5 the export was made from.
SOURCE_NAME_KEY = "digits_source_file"
MODEL_NAME_KEY = "digits_model_name"
PARAMETERS_KEY = "digits_parameters"
# METADATA_ATTRIBUTE is also the key of the training record, copied into the export.


class ModelLoadError(Exception):
    """The model file or its export is missing, unreadable, stale, or not a 28x28-image-to-digits classifier."""


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


def export_path(model_path):
    """Where the export of a .h5 lives: beside it, same name, .onnx."""
    return pathlib.Path(model_path).with_suffix(EXPORT_SUFFIX)


def sha256(path):
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(model_path):
    """Fail fast, without loading a model runtime, unless the .h5 exists and its export beside it was made from it.

    Returns the export's path and its metadata (a dict of strings).
    """
    path = existing_file(model_path)
    exported = export_path(path)
    if not exported.is_file():
        raise ModelLoadError(f"{exported} is missing: export {path.name} with {EXPORT_COMMAND} --model {path}")
    try:
        metadata = read_export_metadata(exported)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"could not read the exported model {exported}: {error}") from error
    if metadata.get(SOURCE_SHA256_KEY) != sha256(path):
        raise ModelLoadError(f"{exported} was exported from a different {path.name}; run {EXPORT_COMMAND}"
                             + ("" if path == DEFAULT_PATH.resolve() else f" --model {path}"))
    return exported, metadata


def read_export_metadata(onnx_path):
    """An ONNX file's metadata_props as a dict, read from the protobuf wire format without any ONNX library.

    ModelProto's field 14 holds the entries (key: field 1, value: field 2); every other top-level field is
    skipped by its length, so this reads the metadata of a large model in microseconds.
    """
    data = pathlib.Path(onnx_path).read_bytes()
    metadata = {}
    for number, value in _fields(data):
        if number == 14:
            entry = dict(_fields(value))
            metadata[bytes(entry.get(1, b"")).decode()] = bytes(entry.get(2, b"")).decode()
    return metadata


def _fields(data):
    """(field number, value) of each top-level protobuf field: ints for varints, memoryviews for the rest."""
    view, position = memoryview(data), 0
    while position < len(view):
        key, position = _varint(view, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(view, position)
        elif wire_type == 2:
            length, position = _varint(view, position)
            value, position = view[position : position + length], position + length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            value, position = view[position : position + size], position + size
        else:
            raise ValueError(f"not an ONNX model (protobuf wire type {wire_type} at byte {position})")
        if position > len(view):
            raise ValueError("the file is truncated")
        yield number, value


def _varint(view, position):
    """A protobuf base-128 varint at position; the value and the position after it."""
    value = shift = 0
    while True:
        if position >= len(view) or shift > 63:
            raise ValueError("the file is truncated or not an ONNX model")
        byte = view[position]
        value |= (byte & 0x7F) << shift
        position += 1
        shift += 7
        if byte < 0x80:
            return value, position
