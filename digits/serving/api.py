"""The HTTP API: upload an image, get the digit. Routes read top to bottom: files, preparation, model, JSON."""

import base64
import io
import pathlib

import flask
import numpy as np
from PIL import Image

from digits.imaging import exceptions, preparation
from digits.serving import classifier, errors, monitoring, reading

blueprint = flask.Blueprint("api", __name__)
OPENAPI_PATH = pathlib.Path(__file__).with_name("openapi.json")


@blueprint.post("/upload")
@blueprint.post("/uploads")
def upload():
    """The original API: one image in, the digit as a bare JSON string ("7") out."""
    digits = _prepare(_uploaded_files()[:1])
    [(digit, _)] = _read(classifier.get(flask.current_app).predict(digits))
    monitoring.record_predictions([digit])
    return flask.jsonify(str(digit))


@blueprint.post("/predict")
def predict():
    """One or more images in; digit, confidence, probabilities and the 28x28 image the model saw out."""
    files = _uploaded_files()
    digits = _prepare(files)
    probabilities = classifier.get(flask.current_app).predict(digits)
    results = [_result(digit, row, reading_)
               for digit, row, reading_ in zip(digits, probabilities, _read(probabilities))]
    monitoring.record_predictions(result["digit"] for result in results)
    return flask.jsonify(results[0] if len(results) == 1 else {"results": results})


@blueprint.get("/health")
def health():
    """Liveness: the process answers, and which model it serves since when."""
    return flask.jsonify(status="ok", model=classifier.get(flask.current_app).describe())


@blueprint.get("/ready")
def ready():
    """Readiness: the model is loaded and warmed up, so the first request is as fast as the rest."""
    is_ready = classifier.get(flask.current_app).ready
    return flask.jsonify(ready=is_ready), 200 if is_ready else 503


@blueprint.get("/model")
def model():
    """The served model and its training record: test accuracy, per-digit accuracy, data hash, settings."""
    served = classifier.get(flask.current_app)
    training = {key: value for key, value in served.metadata.items() if key != "history"}
    return flask.jsonify(model=served.describe(), training=training)


@blueprint.get("/openapi.json")
def openapi():
    """The OpenAPI 3 description of this API (kept true by tests/test_openapi.py)."""
    return flask.Response(OPENAPI_PATH.read_bytes(), mimetype="application/json")


def _uploaded_files():
    """The request's `file` fields, refusing none and too many."""
    files = flask.request.files.getlist("file")
    if not files:
        raise errors.MissingFile("Send the image as a multipart/form-data field named 'file'.")
    limit = flask.current_app.config["MAX_FILES"]
    if len(files) > limit:
        raise errors.TooManyFiles(f"At most {limit} files per request; this one has {len(files)}.")
    return files


def _prepare(files):
    """Each uploaded file as the 28x28 digit the model reads; a bad file fails the request, naming it."""
    max_pixels = flask.current_app.config["MAX_IMAGE_PIXELS"]
    digits = []
    for index, file in enumerate(files):
        try:
            digits.append(preparation.prepare_upload(file.read(), max_pixels=max_pixels))
        except exceptions.DigitInputError as error:
            if len(files) > 1:
                raise errors.FileRefused(index, len(files), error) from error
            raise
    return np.stack(digits)


def _read(probabilities):
    """(digit, confidence) per image; an image that is not a digit fails the request, naming it among several."""
    readings = reading.read_digits(probabilities, classifier.get(flask.current_app).metadata)
    for index, (digit, _) in enumerate(readings):
        if digit is None:
            error = exceptions.NotADigit("This does not look like a digit: draw or upload a single digit, 0 to 9.")
            if len(readings) > 1:
                raise errors.FileRefused(index, len(readings), error)
            raise error
    return readings


def _result(digit, probabilities, read):
    """The rich answer for one image."""
    best, confidence = read
    return {
        "digit": best,
        "confidence": round(confidence, 6),
        "probabilities": [round(float(p), 6) for p in reading.digit_probabilities(probabilities)],
        "image": _png_data_url(digit),
    }


def _png_data_url(digit):
    """The 28x28 input as a PNG data URL, so people can see what the model saw."""
    buffer = io.BytesIO()
    Image.fromarray(np.rint(digit * 255).astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
