"""The Open Inference Protocol (KServe V2, as Triton and MLServer speak it) over REST, beside our own API.

One model, "mnist", with two inputs (send one of them per request): "digits", prepared digits as FP32
[N, 28, 28] or [N, 784] in 0..1, and "images", encoded images as BYTES [N] that go through the same
preparation as /upload. Two outputs: "probabilities" FP32 [N, K] and "digit" INT64 [N], the most probable
class (10, with a model that has an 11th class, means "not a digit"). Tensors travel as JSON ("data", flat
or nested; BYTES elements as base64 strings) or in the binary tensor data extension (the JSON header, then
raw bytes; Inference-Header-Content-Length says where the JSON ends), which is what tritonclient sends by
default. Errors are the protocol's {"error": message}.
"""

import base64
import binascii
import json
import math
import pathlib
import struct
import zlib

import flask
import numpy as np
from werkzeug import exceptions as http

from digits.imaging import exceptions, preparation
from digits.serving import classifier, monitoring

blueprint = flask.Blueprint("inference_protocol", __name__, url_prefix="/v2")

MODEL_NAME = "mnist"
SERVER_NAME = "mnist-neural-network"
SERVER_VERSION = "1.1.0"
EXTENSIONS = ["binary_tensor_data"]
HEADER_LENGTH = "Inference-Header-Content-Length"
PIXELS = preparation.IMAGE_SIDE * preparation.IMAGE_SIDE


class ProtocolError(Exception):
    """A request the protocol refuses: a message and an HTTP status."""

    def __init__(self, message, status=400, code="bad_inference_request"):
        """`code` names the error in our metrics; the answer carries only the message, as the protocol says."""
        super().__init__(message)
        self.status, self.code = status, code


@blueprint.get("/health/live")
def live():
    """Liveness: the process answers."""
    return flask.jsonify(live=True)


@blueprint.get("/health/ready")
def server_ready():
    """Readiness: the one model is loaded and warmed up."""
    is_ready = classifier.get(flask.current_app).ready
    return flask.jsonify(ready=is_ready), 200 if is_ready else 503


@blueprint.get("")
def server_metadata():
    """Who answers and which protocol extensions it speaks."""
    return flask.jsonify(name=SERVER_NAME, version=SERVER_VERSION, extensions=EXTENSIONS)


@blueprint.get("/models/<name>")
def model_metadata(name):
    """The model's inputs and outputs, with the class count read from the model itself."""
    served = _model(name)
    classes = _class_count(served)
    return flask.jsonify(
        name=MODEL_NAME, versions=["1"], platform=_platform(served.describe()["file"]),
        inputs=[
            {"name": "digits", "datatype": "FP32", "shape": [-1, preparation.IMAGE_SIDE, preparation.IMAGE_SIDE]},
            {"name": "images", "datatype": "BYTES", "shape": [-1]},
        ],
        outputs=[
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, classes]},
            {"name": "digit", "datatype": "INT64", "shape": [-1]},
        ],
    )


@blueprint.get("/models/<name>/ready")
def model_ready(name):
    """Readiness of the named model."""
    is_ready = _model(name).ready
    return flask.jsonify(name=MODEL_NAME, ready=is_ready), 200 if is_ready else 503


@blueprint.post("/models/<name>/infer")
def infer(name):
    """One input tensor in, probabilities and digits out, as JSON or binary tensors as the request asks."""
    served = _model(name)
    request, binary = _read_request()
    digits = _digits(request, binary)
    probabilities = served.predict(digits).astype(np.float32)
    best = np.argmax(probabilities, axis=1).astype(np.int64)
    monitoring.record_predictions(best)
    tensors = {"probabilities": probabilities, "digit": best}
    return _respond(request, tensors)


@blueprint.errorhandler(ProtocolError)
@blueprint.errorhandler(exceptions.DigitInputError)
def _refused(error):
    """Our refusals, in the protocol's shape."""
    return _error(error.status, error.code, str(error))


@blueprint.errorhandler(http.HTTPException)
def _http_error(error):
    """Werkzeug's errors raised in these views (413 for a body over MAX_CONTENT_LENGTH), in the protocol's shape."""
    if isinstance(error, http.RequestEntityTooLarge):
        limit = flask.current_app.config["MAX_CONTENT_LENGTH"]
        return _error(413, "file_too_large", f"The request is larger than the limit of {limit:,} bytes.")
    return _error(error.code, "_".join(error.name.lower().split()), error.description)


def _error(status, code, message):
    """{"error": message} with its status, counted like every other error."""
    monitoring.record_error(code)
    return flask.jsonify(error=message), status


def _model(name):
    """The classifier, if `name` is the model we serve."""
    if name != MODEL_NAME:
        raise ProtocolError(f"Unknown model '{name}'; this server serves '{MODEL_NAME}'.", 404, "unknown_model")
    return classifier.get(flask.current_app)


def _platform(file_name):
    """The runtime behind the model, named as Triton names its backends, from the model file's kind."""
    suffix = pathlib.PurePath(file_name).suffix
    return {".h5": "tensorflow_keras", ".keras": "tensorflow_keras", ".onnx": "onnxruntime_onnx"}.get(suffix, suffix)


def _class_count(served):
    """K, the model's output count (10 digits, or 11 with "not a digit"), from one prediction."""
    return int(served.predict(np.zeros((1, preparation.IMAGE_SIDE, preparation.IMAGE_SIDE), np.float32)).shape[1])


def _read_request():
    """The JSON inference request and the binary bytes after it (empty without the binary extension)."""
    body = _decoded_body()
    header_length = flask.request.headers.get(HEADER_LENGTH)
    if header_length is None:
        header, binary = body, b""
    else:
        if not (header_length.isascii() and header_length.isdigit()) or int(header_length) > len(body):
            raise ProtocolError(f"{HEADER_LENGTH} must be a byte count within the body of {len(body)} bytes.")
        header, binary = body[:int(header_length)], body[int(header_length):]
    try:
        request = json.loads(header)
    except (ValueError, RecursionError) as error:
        raise ProtocolError(f"The inference request is not JSON: {error}") from error
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise ProtocolError("The inference request must be a JSON object with a list of 'inputs'.")
    return request, binary


def _decoded_body():
    """The request body, inflated if tritonclient compressed it (gzip or deflate), never past MAX_CONTENT_LENGTH."""
    body = flask.request.get_data(cache=False)
    encoding = flask.request.headers.get("Content-Encoding", "identity").lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise ProtocolError(f"Content-Encoding '{encoding}' is not supported; use gzip, deflate or none.", 415,
                            "unsupported_encoding")
    limit = flask.current_app.config["MAX_CONTENT_LENGTH"]
    inflater = zlib.decompressobj(zlib.MAX_WBITS | (16 if encoding == "gzip" else 0))
    try:
        inflated = inflater.decompress(body, limit + 1)  # A small body may inflate to gigabytes: stop at the limit.
    except zlib.error as error:
        raise ProtocolError(f"The {encoding} body could not be inflated: {error}") from error
    if len(inflated) > limit:
        raise ProtocolError(f"The inflated request is larger than the limit of {limit:,} bytes.", 413,
                            "file_too_large")
    return inflated


def _digits(request, binary):
    """The request's one input as prepared digits (N, 28, 28) float32."""
    inputs = request["inputs"]
    if len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ProtocolError("Send exactly one input: 'digits' (FP32 [N, 28, 28] or [N, 784]) or 'images' (BYTES [N]).")
    tensor = inputs[0]
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if not (isinstance(shape, list) and shape and all(type(size) is int and size >= 0 for size in shape)):
        raise ProtocolError(f"Input '{name}': 'shape' must be a non-empty list of sizes.")
    if name == "digits" and datatype == "FP32":
        return _prepared_digits(tensor, shape, binary)
    if name == "images" and datatype == "BYTES":
        return _uploaded_images(tensor, shape, binary)
    raise ProtocolError(f"Unknown input '{name}' of type {datatype}: send 'digits' as FP32 or 'images' as BYTES.")


def _prepared_digits(tensor, shape, binary):
    """FP32 [N, 28, 28] or [N, 784] in 0..1, from JSON data or raw little-endian floats."""
    square = len(shape) == 2 or shape[1] == shape[2]
    if len(shape) not in (2, 3) or shape[0] < 1 or math.prod(shape[1:]) != PIXELS or not square:
        raise ProtocolError(f"Input 'digits' has shape {shape}; [N, 28, 28] or [N, 784] with N >= 1 is needed.")
    raw = _binary_part(tensor, binary)
    if raw is not None:
        if len(raw) != math.prod(shape) * 4:
            raise ProtocolError(f"Input 'digits' of shape {shape} needs {math.prod(shape) * 4} bytes, not {len(raw)}.")
        values = np.frombuffer(raw, dtype="<f4")
    else:
        values = _json_numbers(tensor.get("data"), math.prod(shape))
    if not np.all((values >= 0) & (values <= 1)):  # Also false for NaN.
        raise ProtocolError("Input 'digits' must hold values in 0..1 (ink 1, background 0), as MNIST does.")
    return values.reshape(-1, preparation.IMAGE_SIDE, preparation.IMAGE_SIDE)


def _json_numbers(data, count):
    """JSON tensor data, flat or nested, as `count` float32 numbers."""
    if not isinstance(data, list):
        raise ProtocolError("Input 'digits' needs its values in 'data' (or as binary data).")
    try:
        values = np.asarray(data, dtype=np.float32).ravel()
    except (ValueError, TypeError) as error:  # Ragged nesting, strings, objects.
        raise ProtocolError(f"Input 'digits' must hold numbers only, nested evenly: {error}") from error
    if values.size != count:
        raise ProtocolError(f"Input 'digits' holds {values.size} values; its shape says {count}.")
    return values


def _uploaded_images(tensor, shape, binary):
    """BYTES [N]: each element an encoded image, prepared as /upload prepares a file."""
    if len(shape) != 1:
        raise ProtocolError(f"Input 'images' has shape {shape}; [N], one encoded image per element, is needed.")
    limit = flask.current_app.config["MAX_FILES"]
    if not 1 <= shape[0] <= limit:
        raise ProtocolError(f"Input 'images' may hold 1 to {limit} images; its shape says {shape[0]}.", 413,
                            "too_many_files")
    raw = _binary_part(tensor, binary)
    images = _unpack_bytes(raw, shape[0]) if raw is not None else _base64_elements(tensor.get("data"), shape[0])
    max_pixels = flask.current_app.config["MAX_IMAGE_PIXELS"]
    digits = []
    for index, image in enumerate(images):
        try:
            digits.append(preparation.prepare_upload(image, max_pixels=max_pixels))
        except exceptions.DigitInputError as error:
            raise ProtocolError(f"Image {index + 1} of {len(images)}: {error}", error.status, error.code) from error
    return np.stack(digits)


def _unpack_bytes(raw, count):
    """The binary BYTES layout: each element as a 4-byte little-endian length, then that many bytes."""
    elements, offset = [], 0
    while offset < len(raw) and len(elements) < count:
        if offset + 4 > len(raw):
            break
        (length,) = struct.unpack_from("<I", raw, offset)
        elements.append(raw[offset + 4:offset + 4 + length])
        offset += 4 + length
    if len(elements) != count or offset != len(raw):
        raise ProtocolError(f"Input 'images' binary data does not hold {count} length-prefixed elements exactly.")
    return elements


def _base64_elements(data, count):
    """JSON BYTES elements: each a base64 string of an encoded image (JSON strings cannot carry raw bytes)."""
    if not (isinstance(data, list) and len(data) == count and all(isinstance(item, str) for item in data)):
        raise ProtocolError(f"Input 'images' needs 'data' as a list of {count} base64 strings (or binary data).")
    try:
        return [base64.b64decode(item, validate=True) for item in data]
    except (binascii.Error, ValueError) as error:
        raise ProtocolError(f"Input 'images' holds an element that is not base64: {error}") from error


def _binary_part(tensor, binary):
    """The tensor's bytes from the binary extension, or None when it travels as JSON 'data'."""
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ProtocolError("An input's 'parameters' must be a JSON object.")
    if "shared_memory_region" in parameters:
        raise ProtocolError("Shared memory is not supported by this server; send the data in the request.")
    size = parameters.get("binary_data_size")
    if size is None:
        return None
    if type(size) is not int or not 0 <= size <= len(binary):
        raise ProtocolError(f"binary_data_size {size!r} does not fit the {len(binary)} bytes after the JSON header.")
    if size != len(binary):
        raise ProtocolError(f"The request carries {len(binary)} bytes after the JSON header; the input claims {size}.")
    return binary


def _respond(request, tensors):
    """The inference response: the asked-for outputs (all by default), each as JSON data or binary data."""
    parameters = request.get("parameters") if isinstance(request.get("parameters"), dict) else {}
    all_binary = parameters.get("binary_data_output") is True
    asked = request.get("outputs")
    if asked is None:
        wanted = [(name, all_binary) for name in tensors]
    elif isinstance(asked, list) and all(isinstance(output, dict) for output in asked):
        wanted = [(output.get("name"), _wants_binary(output, all_binary)) for output in asked]
    else:
        raise ProtocolError("'outputs' must be a list of objects naming outputs.")
    outputs, chunks = [], []
    for name, as_binary in wanted:
        if name not in tensors:
            raise ProtocolError(f"Unknown output '{name}'; this model gives {', '.join(tensors)}.")
        tensor = tensors[name]
        output = {"name": name, "datatype": "FP32" if tensor.dtype == np.float32 else "INT64",
                  "shape": list(tensor.shape)}
        if as_binary:
            chunks.append(tensor.astype(tensor.dtype.newbyteorder("<")).tobytes())
            output["parameters"] = {"binary_data_size": len(chunks[-1])}
        else:
            output["data"] = tensor.ravel().tolist()
        outputs.append(output)
    answer = {"model_name": MODEL_NAME, "model_version": "1", "outputs": outputs}
    if isinstance(request.get("id"), str):
        answer["id"] = request["id"]
    header = json.dumps(answer).encode()
    if not chunks:
        return flask.Response(header, mimetype="application/json")
    response = flask.Response(header + b"".join(chunks), mimetype="application/octet-stream")
    response.headers[HEADER_LENGTH] = str(len(header))
    return response


def _wants_binary(output, default):
    """An output's own binary_data parameter, else the request's binary_data_output."""
    parameters = output.get("parameters") if isinstance(output.get("parameters"), dict) else {}
    if parameters.get("classification", 0):
        raise ProtocolError("The classification extension is not supported; ask for 'probabilities' instead.")
    return parameters.get("binary_data", default) is True
