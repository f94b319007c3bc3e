"""The Open Inference Protocol (V2) endpoints, spoken to by the official client (tritonclient) and by hand."""

import base64
import json

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from testsupport import images

MODEL = "mnist"
CANVAS_SEVEN = images.CHROMIUM_CANVAS.read_bytes()
DRAWN_ONE = images.encode(images.drawn_digit(images.ONE))


@pytest.fixture(scope="module")
def client(live_server):
    """tritonclient's HTTP client aimed at the real `python3 app.py`."""
    with triton.InferenceServerClient(live_server.removeprefix("http://"), connection_timeout=30,
                                      network_timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def test_digits(mnist):
    """32 MNIST test digits in 0..1 and their labels."""
    return (mnist.x_test[:32] / 255.0).astype(np.float32), mnist.y_test[:32]


def infer(client, name, datatype, array, binary=True, outputs=None, **options):
    """One inference with one input; the client's result."""
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    requested = [triton.InferRequestedOutput(output, binary_data=binary) for output in outputs] if outputs else None
    return client.infer(MODEL, [tensor], outputs=requested, **options)


def test_health_and_metadata_through_the_official_client(client):
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL)
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata(MODEL)
    assert {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]} == {"digits": "FP32",
                                                                                       "images": "BYTES"}
    outputs = {tensor["name"]: tensor for tensor in metadata["outputs"]}
    assert outputs["digit"]["datatype"] == "INT64"
    assert outputs["probabilities"]["shape"][1] in (10, 11)  # 11 with a "not a digit" class.


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("layout", [(28, 28), (784,)], ids=["28x28", "784"])
def test_prepared_digits_are_read(client, test_digits, binary, layout):
    pixels, labels = test_digits
    result = infer(client, "digits", "FP32", pixels.reshape(len(pixels), *layout), binary,
                   outputs=["probabilities", "digit"])
    probabilities, digits = result.as_numpy("probabilities"), result.as_numpy("digit")
    assert probabilities.dtype == np.float32 and probabilities.shape[0] == len(pixels)
    assert probabilities.shape[1] in (10, 11)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-3)
    assert digits.dtype == np.int64 and np.array_equal(digits, probabilities.argmax(axis=1))
    assert np.mean(digits == labels) >= 0.9


def test_encoded_images_go_through_our_preparation(client):
    images_in = np.array([CANVAS_SEVEN, DRAWN_ONE], dtype=np.object_)
    result = infer(client, "images", "BYTES", images_in)  # No outputs named: all, as binary tensors.
    assert result.as_numpy("digit").tolist() == [7, 1]


def test_encoded_images_as_base64_json_strings(client):
    encoded = np.array([base64.b64encode(CANVAS_SEVEN)], dtype=np.object_)
    result = infer(client, "images", "BYTES", encoded, binary=False, outputs=["digit"])
    assert result.as_numpy("digit").tolist() == [7]
    assert result.as_numpy("probabilities") is None  # Only what was asked for.


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests(client, test_digits, algorithm):
    pixels, labels = test_digits
    result = infer(client, "digits", "FP32", pixels[:4], request_compression_algorithm=algorithm)
    assert result.as_numpy("digit").tolist() == result.as_numpy("probabilities").argmax(axis=1).tolist()


@pytest.mark.parametrize(("call", "status", "words"), [
    (lambda client: client.get_model_metadata("resnet"), "404", "Unknown model"),
    (lambda client: infer(client, "images", "BYTES", np.array([b"not an image"], dtype=np.object_)), "415",
     "Image 1 of 1"),
    (lambda client: infer(client, "digits", "FP32", np.full((1, 784), 2, np.float32)), "400", "0..1"),
    (lambda client: infer(client, "digits", "FP32", np.zeros((1, 27, 27), np.float32)), "400", "shape"),
    (lambda client: infer(client, "pixels", "FP32", np.zeros((1, 784), np.float32)), "400", "Unknown input"),
])
def test_refusals_reach_the_client_in_the_protocols_shape(client, call, status, words):
    with pytest.raises(InferenceServerException) as raised:
        call(client)
    assert raised.value.status() == status and words in raised.value.message()


def test_json_by_hand_nested_data_and_the_error_shape(live_server, test_digits):
    pixels, labels = test_digits
    request = {"id": "by-hand", "inputs": [{"name": "digits", "datatype": "FP32", "shape": [2, 28, 28],
                                            "data": pixels[:2].tolist()}]}
    answer = requests.post(f"{live_server}/v2/models/{MODEL}/infer", json=request, timeout=30)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    assert body["id"] == "by-hand" and body["model_name"] == MODEL
    outputs = {output["name"]: output for output in body["outputs"]}
    assert outputs["digit"]["shape"] == [2] and len(outputs["digit"]["data"]) == 2
    assert outputs["probabilities"]["shape"][0] == 2
    refused = requests.post(f"{live_server}/v2/models/{MODEL}/infer", data=b"{not json", timeout=30)
    assert refused.status_code == 400 and list(refused.json()) == ["error"]


def test_binary_extension_by_hand(live_server):
    element = len(CANVAS_SEVEN).to_bytes(4, "little") + CANVAS_SEVEN
    header = json.dumps({"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1],
                                     "parameters": {"binary_data_size": len(element)}}],
                         "outputs": [{"name": "digit", "parameters": {"binary_data": True}}]}).encode()
    answer = requests.post(f"{live_server}/v2/models/{MODEL}/infer", data=header + element, timeout=30,
                           headers={"Inference-Header-Content-Length": str(len(header))})
    assert answer.status_code == 200
    length = int(answer.headers["Inference-Header-Content-Length"])
    output = json.loads(answer.content[:length])["outputs"][0]
    assert output["parameters"]["binary_data_size"] == 8
    assert np.frombuffer(answer.content[length:], dtype="<i8").tolist() == [7]
