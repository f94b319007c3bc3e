"""The HTTP API: upload an image, get the digit. Routes read top to bottom: files, preparation, model, JSON."""

import base64
import collections
import io
import pathlib

import flask
import numpy as np
from PIL import Image

from digits.imaging import decoding, exceptions, preparation, segmentation
from digits.serving import classifier, errors, monitoring, reading

blueprint = flask.Blueprint("api", __name__)
OPENAPI_PATH = pathlib.Path(__file__).with_name("openapi.json")


@blueprint.post("/upload")
@blueprint.post("/uploads")
def upload():
    """The original API: one image in, what was read as a bare JSON string out: "7", or "2026" for a number."""
    return flask.jsonify(_read(_uploaded_files()[:1])[0].text)  # direct_upload.py answers most of these itself.


@blueprint.post("/predict")
def predict():
    """One or more images in; per image the text read and each digit's confidence, probabilities, image, box.

    For an image of one digit the answer also keeps the original top-level fields (digit, confidence,
    probabilities, image); for a number of several digits they are left out, since no one digit speaks for it.
    """
    readings = [_rich_answer(reading) for reading in _read(_uploaded_files())]
    return flask.jsonify(readings[0] if len(readings) == 1 else {"results": readings})


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


class Reading(collections.namedtuple("Reading", "digits probabilities read")):
    """One image read: its segmentation.Digits, the model's probabilities for each, and each (digit, confidence)."""

    @property
    def text(self):
        """What was read, as the digits' characters: "7", "2026"."""
        return "".join(str(digit) for digit, _ in self.read)


def _read(files):
    """Each uploaded file read as a number, a Reading; a bad file fails the request, naming it."""
    return read_images([file.read() for file in files], classifier.get(flask.current_app), flask.current_app.config)


def read_images(uploads, served, config):
    """Each image (bytes) read as a number by the classifier `served`, a Reading; a bad one fails them all,
    named when there are several. `config` holds the app's pixel limits. (No Flask here: direct_upload.py
    calls it below Flask.)"""
    pixels = sum(decoding.decoding_work(data, config["MAX_IMAGE_PIXELS"]) for data in uploads)  # Headers only.
    if pixels > config["MAX_REQUEST_PIXELS"]:
        raise errors.TooManyPixelsInRequest(
            f"The images hold {pixels:,} pixels together (a JPEG counted once per 10 scans); "
            f"at most {config['MAX_REQUEST_PIXELS']:,} per request.")
    numbers = []
    for index, data in enumerate(uploads):
        try:
            numbers.append(segmentation.prepare_number(data, max_pixels=config["MAX_IMAGE_PIXELS"],
                                                       classify=served.predict))
        except exceptions.DigitInputError as error:
            if len(uploads) > 1:
                raise errors.FileRefused(index, len(uploads), error) from error
            raise
    probabilities = _probabilities([digit for number in numbers for digit in number], served)
    readings, row = [], 0
    for index, number in enumerate(numbers):
        rows = probabilities[row : row + len(number)]
        row += len(number)
        read = reading.read_digits(rows, served.metadata)
        try:
            _refuse_non_digits(read)
            _refuse_split_shapes(number, uploads[index], served, config["MAX_IMAGE_PIXELS"])
        except exceptions.DigitInputError as error:
            if len(uploads) > 1:
                raise errors.FileRefused(index, len(uploads), error) from error
            raise
        readings.append(Reading(number, rows, read))
    monitoring.record_predictions(digit for answer in readings for digit, _ in answer.read)
    return readings


def _probabilities(digits, served):
    """The model's probabilities for each digit: those the segmentation already asked for, the rest in one batch."""
    missing = [digit.image for digit in digits if digit.probabilities is None]
    predicted = iter(served.predict(np.stack(missing)) if missing else ())
    return np.stack([next(predicted) if digit.probabilities is None else digit.probabilities for digit in digits])


def _refuse_non_digits(read):
    """Refuse the whole image when the model says any of its parts is not a digit (see reading.py)."""
    if any(digit is None for digit, _ in read):
        raise exceptions.NotADigit(
            "This does not look like a digit: draw or upload handwritten digits 0 to 9 only."
            if len(read) == 1 else
            "Part of this does not look like a digit: draw or upload handwritten digits 0 to 9 only."
        )


def _refuse_split_shapes(number, data, served, max_pixels):
    """Refuse digits cut out of one shape (an A, a #, a star) that, whole, the model reads as no digit.

    A letter or a sign is often one connected stroke, and its pieces, cut apart, can each look like a digit;
    digits written side by side mostly stand apart. So a reading that cut through a stroke stands only if
    the whole image is not, by itself, something other than a digit.
    """
    if len(number) < 2 or not any(digit.cut for digit in number):
        return
    whole = served.predict(preparation.prepare_upload(data, max_pixels=max_pixels))
    if reading.read_digits(whole, served.metadata)[0][0] is None:
        raise exceptions.NotADigit("This does not look like a digit: draw or upload handwritten digits 0 to 9 only.")


def _rich_answer(read):
    """The rich answer for one image: the text, each digit, and for a single digit its fields at the top."""
    digits = [{**_result(digit.image, probabilities, best), "box": digit.box}
              for digit, probabilities, best in zip(*read)]
    answer = {"text": read.text, "digits": digits}
    if len(digits) == 1:
        answer = {**{key: digits[0][key] for key in ("digit", "confidence", "probabilities", "image")}, **answer}
    return answer


def _result(digit, probabilities, read):
    """The rich answer for one digit: the ten digits' probabilities (a "not a digit" output is left out)."""
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
