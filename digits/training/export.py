"""Export the trained .h5 to the ONNX file the service runs: `python3 -m digits.training.export [--model F]`.

The export records the sha256 of the .h5 it was made from, so the service refuses an export that no longer
matches the .h5 beside it. It is written to a temporary file and moved into place, as the .h5 is.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import warnings

import numpy as np

from digits import model_file


def parse_args(argv=None):
    """The command line; every flag says its default."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(":")[0] + ".",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default=str(model_file.DEFAULT_PATH), help="the Keras .h5 model file")
    parser.add_argument("--output", default=None, help="the ONNX file (default: the model's name with .onnx)")
    return parser.parse_args(argv)


def export(model_path=model_file.DEFAULT_PATH, output=None):
    """Write the ONNX export of a Keras .h5 model beside it (or to output); returns the export's path."""
    import keras
    import onnx

    model_path = model_file.existing_file(model_path)
    output = pathlib.Path(output) if output else model_file.export_path(model_path)
    source_sha256 = model_file.sha256(model_path)
    try:
        model = keras.saving.load_model(model_path, compile=False)
        record = model_file.read_metadata(model_path)
    except Exception as error:  # h5py and Keras each fail their own way on a bad file.
        raise model_file.ModelLoadError(f"could not read the model file {model_path}: {error}") from error
    model(np.zeros((1, *model.input_shape[1:]), dtype=np.float32))  # Keras exports only a model that has run.
    with tempfile.TemporaryDirectory(prefix="digits-export-") as scratch:
        raw = pathlib.Path(scratch) / "model.onnx"
        with warnings.catch_warnings():
            # tf2onnx probes numpy for the removed np.object; the probe warns and changes nothing.
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*np.object.*")
            model.export(str(raw), format="onnx", verbose=False)
        exported = _constant_flatten_shapes(onnx.load(str(raw)))
    facts = {
        model_file.SOURCE_SHA256_KEY: source_sha256,
        model_file.SOURCE_NAME_KEY: model_path.name,
        model_file.MODEL_NAME_KEY: model.name,
        model_file.PARAMETERS_KEY: str(int(model.count_params())),
        model_file.METADATA_ATTRIBUTE: json.dumps(record),
    }
    del exported.metadata_props[:]
    for key, value in facts.items():
        exported.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(exported)
    temporary = output.with_name(output.stem + ".tmp" + output.suffix)
    try:
        onnx.save(exported, str(temporary))
        if model_file.sha256(model_path) != source_sha256:
            raise model_file.ModelLoadError(f"{model_path} changed while it was being exported; export it again")
        os.replace(temporary, output)  # Atomic: the service sees the old export or the new one.
    finally:
        temporary.unlink(missing_ok=True)
    return output


def _constant_flatten_shapes(model):
    """The model with each Reshape to (batch, static sizes...) given that shape as a constant, its shape arithmetic
    dropped.

    The converter computes a Flatten's target shape at run time (Shape, Gather, Cast, Slice, Concat, Cast): six
    small operators run on every call for a shape fixed but for the batch. A constant (-1, sizes...) asks the
    same of Reshape, so the outputs are the same, bit for bit.
    """
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    constants = {initializer.name for initializer in graph.initializer}
    shapes = {value.name: [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
              for value in onnx.shape_inference.infer_shapes(model, data_prop=True).graph.value_info}
    for node in graph.node:
        target, source = shapes.get(node.output[0]), shapes.get(node.input[0])
        if node.op_type != "Reshape" or node.input[1] in constants or not target or not source:
            continue
        sizes, source_sizes = target[1:], source[1:]
        if None in sizes or None in source_sizes or int(np.prod(sizes)) != int(np.prod(source_sizes)):
            continue  # Not a reshape that keeps the batch and fixes the rest.
        name = node.output[0] + "/constant_shape"
        graph.initializer.append(numpy_helper.from_array(np.array([-1, *sizes], dtype=np.int64), name))
        node.input[1] = name
    # Drop what no longer feeds the outputs: the shape arithmetic, and its constants.
    needed, kept = {output.name for output in graph.output}, []
    for node in reversed(graph.node):
        if any(output in needed for output in node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    unused = [initializer for initializer in graph.initializer if initializer.name not in needed]
    for initializer in unused:
        graph.initializer.remove(initializer)
    return model


def main(argv=None):
    """Export, and say where to."""
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter hides the one line that matters.
    try:
        output = export(args.model, args.output)
    except model_file.ModelLoadError as error:
        sys.exit(f"error: {error}")
    print(f"Exported {args.model} to {output}")


if __name__ == "__main__":
    main()
