"""Saying "not a digit": the reading rule, the committed model on drawings it never trained on, and the API."""

import io

import numpy as np
import pytest
from PIL import Image

from digits.serving import classifier, reading
from digits.training import negatives
from testsupport import images

# Letters and signs as the page's users draw them: 400x400 canvas, 15 px white pen (pixel coordinates).
DRAWN = {
    "A": [[(110, 330), (200, 70), (290, 330)], [(145, 230), (255, 230)]],
    "#": [[(170, 70), (150, 330)], [(260, 70), (240, 330)], [(90, 150), (320, 150)], [(80, 250), (310, 250)]],
    "X": [[(110, 80), (290, 320)], [(290, 80), (110, 320)]],
    "smiley": [[(200 + 120 * np.cos(a), 200 + 120 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 40)],
               [(160, 160), (161, 161)], [(240, 160), (241, 161)],
               [(200 + 60 * np.cos(a), 220 + 40 * np.sin(a)) for a in np.linspace(0.3, np.pi - 0.3, 12)]],
    "?": [[*[(200 + 80 * np.cos(a), 130 + 80 * np.sin(a)) for a in np.linspace(np.pi, 2.4 * np.pi, 25)], (200, 260)],
          [(200, 320), (201, 321)]],
}
RULE = {"rejection": {"class_index": 10, "threshold": 0.6}}


@pytest.fixture(scope="module")
def served_model(app):
    """The classifier the app loaded from the committed mnist-neural.h5."""
    return classifier.get(app)


def post(client, path, *files):
    """POST files as multipart field `file`, as the Angular client does."""
    data = {"file": [(io.BytesIO(content), "canvas.png") for content in files]}
    return client.post(path, data=data, content_type="multipart/form-data")


def test_ten_output_model_reads_its_best_digit_and_never_refuses():
    probabilities = np.array([[0.05] * 9 + [0.55], [0.1] * 10])
    assert reading.read_digits(probabilities, {}) == [(9, pytest.approx(0.55)), (0, pytest.approx(0.1))]


@pytest.mark.parametrize(("row", "expected"), [
    pytest.param([0.9] + [0.0] * 9 + [0.1], (0, 0.9), id="confident digit"),
    pytest.param([0.3] + [0.0] * 9 + [0.7], (None, 0.7), id="not a digit above the threshold"),
    pytest.param([0.45] + [0.0] * 9 + [0.55], (0, 0.45), id="not a digit most likely, but below the threshold"),
])
def test_eleven_output_model_refuses_by_its_metadata(row, expected):
    [(digit, confidence)] = reading.read_digits(np.array([row]), RULE)
    assert digit == expected[0] and confidence == pytest.approx(expected[1])
    assert len(reading.digit_probabilities(row)) == 10


def test_committed_model_records_how_it_refuses(served_model):
    rejection = served_model.metadata["rejection"]
    assert rejection["class_index"] == 10 and 0 <= rejection["threshold"] < 1
    assert reading.rejection_rule(served_model.metadata) == (10, rejection["threshold"])


@pytest.mark.parametrize(("group", "templates", "minimum"), [
    ("training templates, drawn anew", negatives.TRAINING, 0.90),
    ("templates never trained on", negatives.HELD_OUT, 0.55),
])
def test_committed_model_refuses_non_digits_it_never_saw(served_model, group, templates, minimum):
    drawn, kinds = negatives.generate(300, [2026, len(templates)], templates)  # Seeds training never used.
    readings = reading.read_digits(served_model.predict(drawn), served_model.metadata)
    refused = np.mean([digit is None for digit, _ in readings])
    read_as = sorted({kind for kind, (digit, _) in zip(kinds, readings) if digit is not None})
    assert refused >= minimum, f"{refused:.1%} of 300 {group} refused; some read as digits: {read_as}"


def test_committed_model_reads_small_real_handwriting(served_model):
    from sklearn import datasets

    from digits.imaging import preparation

    bunch = datasets.load_digits()  # 1,797 real handwritten digits scanned at 8x8, ink 0..16.
    uploads = [images.png_bytes(np.rint(pixels * 255 / 16)) for pixels in bunch.images]
    digits = np.stack([preparation.prepare_upload(data) for data in uploads])
    readings = reading.read_digits(served_model.predict(digits), served_model.metadata)
    accuracy = np.mean([digit == label for (digit, _), label in zip(readings, bunch.target)])
    # The floor for small real handwriting; 96.27% measured (95.88% before small crops were enlarged
    # bicubically), so a few more misses fail it.
    assert accuracy >= 0.96, f"{accuracy:.2%} of scikit-learn's 8x8 digits read, a refusal counted as wrong"


@pytest.mark.parametrize("path", ["/upload", "/uploads", "/predict"])
@pytest.mark.parametrize("name", sorted(DRAWN))
def test_a_drawn_letter_sign_or_face_is_not_a_digit(client, path, name):
    response = post(client, path, images.canvas_png(DRAWN[name]))
    body = response.get_json()
    assert (response.status_code, body["error"], body["status"]) == (422, "not_a_digit", 422), (name, body)
    assert "not look like a digit" in body["message"]


def test_a_drawn_digit_is_still_read_and_a_blank_canvas_is_still_no_digit(client):
    assert post(client, "/upload", images.canvas_png()).get_json() == "7"
    blank = images.encode(Image.new("L", (400, 400), 0))
    assert post(client, "/upload", blank).get_json()["error"] == "no_digit_found"


def test_one_non_digit_among_several_files_is_named(client):
    response = post(client, "/predict", images.canvas_png(), images.canvas_png(DRAWN["A"]))
    body = response.get_json()
    assert (response.status_code, body["error"]) == (422, "not_a_digit")
    assert body["message"].startswith("File 2 of 2")
