"""The served export against the Keras model it was made from: the same answers, and a stale export refused."""

import io

import numpy as np
import pytest

from digits import model_file
from digits.imaging import preparation
from digits.model_file import DEFAULT_PATH as MODEL_PATH
from digits.serving import classifier, reading
from testsupport import images


@pytest.fixture(scope="module")
def keras_model():
    """The committed mnist-neural.h5, loaded by Keras as the trainer saved it."""
    import keras

    return keras.saving.load_model(MODEL_PATH, compile=False)


def test_export_gives_the_keras_models_answers_on_all_mnist_test_images(app, keras_model, mnist_test_prepared):
    served = classifier.get(app).predict(mnist_test_prepared)
    expected = np.asarray(keras_model.predict(
        mnist_test_prepared.reshape((-1, *keras_model.input_shape[1:])), batch_size=1000, verbose=0), dtype=np.float64)
    assert served.shape == expected.shape == (10000, keras_model.output_shape[-1])
    differing = np.flatnonzero(np.argmax(served, axis=1) != np.argmax(expected, axis=1))
    assert differing.size == 0, f"the export reads test images {differing[:20].tolist()} differently"
    assert float(np.max(np.abs(served - expected))) < 1e-4


def test_mnist_test_digits_posted_to_the_service_get_the_keras_models_answers(client, keras_model, mnist):
    """As a client checks it: each of MNIST's 10,000 test digits POSTed to /predict as a 28x28 PNG, the answer
    against the Keras model's for the digit itself (the same digit or the same refusal, probabilities within 1e-4)."""
    served = classifier.get(client.application)
    expected = np.asarray(keras_model.predict(preparation.scale_pixels(mnist.x_test)[..., None], batch_size=1000,
                                              verbose=0), dtype=np.float64)
    expected_reads = reading.read_digits(expected, served.metadata)
    worst, refused = 0.0, 0
    for digit, probabilities, (read, _) in zip(mnist.x_test, expected, expected_reads):
        response = client.post("/predict", data={"file": (io.BytesIO(images.png_bytes(digit)), "digit.png")})
        if read is None:  # The model's eleventh output says "not a digit": the service refuses it too.
            assert (response.status_code, response.get_json()["error"]) == (422, "not_a_digit")
            refused += 1
            continue
        answer = response.get_json()
        assert response.status_code == 200 and answer["digit"] == read
        worst = max(worst, float(np.max(np.abs(np.array(answer["probabilities"]) - probabilities[:10]))))
    assert worst < 1e-4
    assert refused == served.metadata["test_refused"]


def test_export_records_the_h5_it_was_made_from():
    facts = model_file.read_export_metadata(model_file.export_path(MODEL_PATH))
    assert facts[model_file.SOURCE_SHA256_KEY] == model_file.sha256(MODEL_PATH)
    assert facts[model_file.SOURCE_NAME_KEY] == MODEL_PATH.name
    assert int(facts[model_file.PARAMETERS_KEY]) > 0


def test_metadata_reader_agrees_with_the_onnx_library():
    import onnx

    path = model_file.export_path(MODEL_PATH)
    expected = {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}
    assert model_file.read_export_metadata(path) == expected


def test_the_served_export_computes_no_shapes_at_run_time():
    import onnx

    operators = {node.op_type for node in onnx.load(str(model_file.export_path(MODEL_PATH))).graph.node}
    assert "Reshape" in operators and not operators & {"Shape", "Gather", "Slice", "Concat", "Cast"}


def test_constant_flatten_shapes_gives_the_same_outputs_bit_for_bit():
    """A converter's Flatten (its shape computed from the input's, as tf2onnx writes it) made constant."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from digits.training import export

    constant = lambda name, values: numpy_helper.from_array(np.array(values, dtype=np.int64), name)  # noqa: E731
    nodes = [
        helper.make_node("Relu", ["x"], ["features"]),
        helper.make_node("Shape", ["features"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"]),
        helper.make_node("Concat", ["batch", "rest"], ["target"], axis=0),
        helper.make_node("Reshape", ["features", "target"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["y"]),
    ]
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        nodes, "flatten",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 7])],
        [constant("zero", [0]), constant("rest", [60]),
         numpy_helper.from_array(rng.standard_normal((60, 7)).astype(np.float32), "weights")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    before = onnx.load_from_string(model.SerializeToString())
    folded = export._constant_flatten_shapes(model)
    onnx.checker.check_model(folded)
    assert [node.op_type for node in folded.graph.node] == ["Relu", "Reshape", "MatMul"]
    assert {initializer.name for initializer in folded.graph.initializer} == {"weights", "flat/constant_shape"}
    x = rng.standard_normal((5, 3, 4, 5)).astype(np.float32)
    run = lambda m: onnxruntime.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(  # noqa: E731
        None, {"x": x})[0]
    assert np.array_equal(run(folded), run(before))


def copy_pair(folder, h5_bytes):
    """The committed export beside an .h5 made of h5_bytes, in folder; returns the .h5's path."""
    model = folder / MODEL_PATH.name
    model.write_bytes(h5_bytes)
    model_file.export_path(model).write_bytes(model_file.export_path(MODEL_PATH).read_bytes())
    return model


def test_the_committed_pair_copied_elsewhere_still_loads(tmp_path):
    model = copy_pair(tmp_path, MODEL_PATH.read_bytes())
    assert classifier.Classifier(model).predict(np.zeros((1, 28, 28), dtype=np.float32)).shape[0] == 1


def test_an_export_of_another_h5_is_refused_in_one_line(tmp_path):
    retrained = copy_pair(tmp_path, MODEL_PATH.read_bytes() + b"retrained")  # Any other bytes: another model.
    expected = (f"{tmp_path / 'mnist-neural.onnx'} was exported from a different mnist-neural.h5; "
                f"run python3 -m digits.training.export --model {retrained}")
    with pytest.raises(model_file.ModelLoadError) as refused:
        classifier.Classifier(retrained)
    assert str(refused.value) == expected
    with pytest.raises(model_file.ModelLoadError, match="was exported from a different"):
        model_file.check(retrained)  # What gunicorn's master checks before any worker starts.


def test_a_missing_export_is_refused(tmp_path):
    model = tmp_path / MODEL_PATH.name
    model.write_bytes(MODEL_PATH.read_bytes())
    with pytest.raises(model_file.ModelLoadError, match=r"mnist-neural.onnx is missing: export mnist-neural.h5 with "
                       r"python3 -m digits.training.export"):
        model_file.check(model)


@pytest.mark.parametrize("damage", [lambda data: data[:5000], lambda data: b"\xff" * 64, lambda data: b""])
def test_a_damaged_export_is_refused(tmp_path, damage):
    model = copy_pair(tmp_path, MODEL_PATH.read_bytes())
    exported = model_file.export_path(model)
    exported.write_bytes(damage(exported.read_bytes()))
    with pytest.raises(model_file.ModelLoadError):
        classifier.Classifier(model)
