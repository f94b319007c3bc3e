"""Numbers: several digits on one line are read left to right, and one digit drawn in pieces stays one digit."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digits.imaging import segmentation
from digits.serving import classifier
from testsupport import images, numbers


def post(client, path, data):
    """POST one image as the multipart field `file`."""
    return client.post(path, data={"file": (io.BytesIO(data), "canvas.png")}, content_type="multipart/form-data")


def canvas(strokes, width=560, height=280, pen=18):
    """White round strokes on black (the drawing page's canvas); points in 0..1, ellipses as ("o", box)."""
    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        if stroke[0] == "o":
            left, top, right, bottom = stroke[1]
            draw.ellipse((left * width, top * height, right * width, bottom * height), outline=255, width=pen)
            continue
        xy = [(x * width, y * height) for x, y in stroke]
        draw.line(xy, fill=255, width=pen, joint="curve")
        for x, y in xy:
            draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=255)
    return images.encode(image)


# One digit drawn as several pieces, or so wide that it might look like two: each must stay one digit.
ONE_DIGIT = {
    "5-detached-bar": ("5", [[(0.45, 0.15), (0.58, 0.15)],
                             [(0.44, 0.27), (0.43, 0.5), (0.5, 0.45), (0.56, 0.55), (0.56, 0.75), (0.5, 0.85),
                              (0.43, 0.8)]]),
    "4-open-top": ("4", [[(0.44, 0.12), (0.41, 0.6), (0.6, 0.6)], [(0.54, 0.3), (0.54, 0.9)]]),
    "8-broken": ("8", [("o", (0.44, 0.1, 0.56, 0.45)), ("o", (0.43, 0.53, 0.57, 0.92))]),
    "1-with-a-dot": ("1", [[(0.5, 0.3), (0.5, 0.9)], [(0.5, 0.12), (0.5, 0.12)]]),
    "0-wide": ("0", [("o", (0.3, 0.15, 0.7, 0.88))]),
    "7-long-bar": ("7", [[(0.3, 0.15), (0.7, 0.15), (0.52, 0.9)]]),
    "1-with-a-base": ("1", [[(0.45, 0.25), (0.5, 0.12), (0.5, 0.88)], [(0.43, 0.88), (0.57, 0.88)]]),
    "4-two-strokes": ("4", [[(0.45, 0.12), (0.42, 0.6), (0.53, 0.6)], [(0.58, 0.15), (0.58, 0.9)]]),
}


@pytest.mark.parametrize("name", ONE_DIGIT)
def test_one_digit_in_pieces_or_wide_stays_one_digit(client, name):
    expected, strokes = ONE_DIGIT[name]
    body = post(client, "/predict", canvas(strokes)).get_json()
    assert body["text"] == expected, f"{name} read as {body['text']!r}"
    assert body["digit"] == int(expected) and len(body["digits"]) == 1


# Two digits so close that together they are no wider than tall: still two digits.
NARROW_NUMBERS = {
    "11": [[(0.44, 0.15), (0.44, 0.85)], [(0.56, 0.15), (0.56, 0.85)]],
    "91": [("o", (0.36, 0.15, 0.52, 0.48)), [(0.51, 0.32), (0.49, 0.85)], [(0.6, 0.15), (0.6, 0.85)]],
    "71": [[(0.34, 0.15), (0.52, 0.15), (0.41, 0.85)], [(0.6, 0.15), (0.6, 0.85)]],
    "17": [[(0.4, 0.15), (0.4, 0.85)], [(0.48, 0.15), (0.66, 0.15), (0.55, 0.85)]],
}


@pytest.mark.parametrize("expected", NARROW_NUMBERS)
def test_two_digits_no_wider_than_tall_stay_two_digits(client, expected):
    response = post(client, "/upload", canvas(NARROW_NUMBERS[expected]))
    assert response.status_code == 200 and response.get_json() == expected


TWENTY_TWENTY_SIX = [
    [(0.08, 0.3), (0.14, 0.2), (0.2, 0.3), (0.08, 0.8), (0.22, 0.8)],
    ("o", (0.3, 0.2, 0.42, 0.8)),
    [(0.52, 0.3), (0.58, 0.2), (0.64, 0.3), (0.52, 0.8), (0.66, 0.8)],
    [(0.84, 0.2), (0.76, 0.5), (0.75, 0.65), (0.8, 0.8), (0.86, 0.7), (0.82, 0.55), (0.76, 0.6)],
]


def test_upload_answers_the_whole_number_as_a_bare_string(client):
    response = post(client, "/upload", canvas(TWENTY_TWENTY_SIX, width=800))
    assert response.status_code == 200 and response.get_json() == "2026"


def test_predict_answers_text_and_each_digit_with_its_box_in_the_uploads_pixels(client):
    width, height = 1600, 560  # Larger than the working size: boxes must come back in these pixels.
    body = post(client, "/predict", canvas(TWENTY_TWENTY_SIX, width=width, height=height, pen=36)).get_json()
    assert body["text"] == "2026" and [d["digit"] for d in body["digits"]] == [2, 0, 2, 6]
    assert "digit" not in body  # A number's digits speak for themselves; no one of them at the top.
    boxes = [d["box"] for d in body["digits"]]
    for box in boxes:
        assert set(box) == {"left", "top", "width", "height"}
        assert box["left"] >= 0 and box["left"] + box["width"] <= width
        assert box["top"] >= 0 and box["top"] + box["height"] <= height
        assert 0.5 * height < box["height"] < 0.8 * height
    assert [box["left"] for box in boxes] == sorted(box["left"] for box in boxes)
    assert abs(boxes[0]["left"] - 0.08 * width) < 0.03 * width
    for digit in body["digits"]:
        assert len(digit["probabilities"]) == 10 and digit["image"].startswith("data:image/png;base64,")


def test_one_digit_keeps_its_top_level_fields_and_gains_text_digits_and_box(client):
    body = post(client, "/predict", images.encode(images.drawn_digit(images.SEVEN))).get_json()
    assert body["text"] == "7" and body["digit"] == 7
    assert [d["digit"] for d in body["digits"]] == [7]
    assert body["digits"][0]["probabilities"] == body["probabilities"]
    box = body["digits"][0]["box"]
    assert 90 <= box["left"] <= 100 and 70 <= box["top"] <= 80  # The 7's strokes start at (100, 80) - 7.5.


def test_several_files_each_answer_their_number(client):
    data = {"file": [(io.BytesIO(canvas(TWENTY_TWENTY_SIX, width=800)), "a.png"),
                     (io.BytesIO(images.encode(images.drawn_digit(images.ONE))), "b.png")]}
    body = client.post("/predict", data=data, content_type="multipart/form-data").get_json()
    assert [result["text"] for result in body["results"]] == ["2026", "1"]


def test_a_part_the_model_calls_no_digit_refuses_the_whole_image(app, client, monkeypatch):
    served = classifier.get(app)
    original = served.predict

    def every_second_is_no_digit(digits):
        """The served model, except that it calls every second digit 'not a digit' (its 11th class)."""
        rows = original(digits).copy()
        rows[1::2] = 0.0
        rows[1::2, 10] = 1.0
        return rows

    assert original(np.zeros((1, 28, 28), dtype=np.float32)).shape == (1, 11)
    monkeypatch.setattr(served, "predict", every_second_is_no_digit)
    response = post(client, "/upload", canvas(TWENTY_TWENTY_SIX, width=800))
    body = response.get_json()
    assert response.status_code == 422 and body["error"] == "not_a_digit" and body["message"]


def read(served, data):
    """The text the service reads in one upload."""
    digits = segmentation.prepare_number(data, classify=served.predict)
    return "".join(str(int(np.argmax(row[:10]))) for row in served.predict(np.stack([d.image for d in digits])))


@pytest.mark.parametrize("touching, floor", [(False, 0.8), (True, 0.7)], ids=["apart", "some-touching"])
def test_generated_numbers_are_read_exactly(app, touching, floor):
    from digits.training import mnist_data

    mnist = mnist_data.load_mnist(allow_download=False)
    served = classifier.get(app)
    made = numbers.number_set(mnist.x_test, mnist.y_test, count=24, seed=7, touching=touching)
    right = [read(served, data) == text for _, text, data in made]
    # The benchmark (python3 -m benchmarks.numbers) measures this on more numbers; the floor has a margin.
    assert np.mean(right) >= floor, f"{np.mean(right):.0%} of {len(made)} numbers read exactly"


def test_single_mnist_digits_read_as_before_through_the_number_path(app):
    from digits.imaging import preparation
    from digits.training import mnist_data

    mnist = mnist_data.load_mnist(allow_download=False)
    served = classifier.get(app)
    uploads = [images.png_bytes(mnist.x_test[i]) for i in np.random.default_rng(11).choice(10000, 500, replace=False)]
    before = np.argmax(served.predict(np.stack([preparation.prepare_upload(data) for data in uploads])), axis=1)
    now = [read(served, data) for data in uploads]
    assert sum(len(text) != 1 for text in now) <= 1
    assert sum(text == str(int(digit)) for text, digit in zip(now, before)) >= 499


def test_realistic_single_digits_read_as_before_through_the_number_path(app):
    from digits.imaging import preparation
    from digits.training import mnist_data
    from testsupport import synthetic

    mnist = mnist_data.load_mnist(allow_download=False)
    served = classifier.get(app)
    uploads = synthetic.realistic_set(mnist.x_test, mnist.y_test, count=60, seed=4242)
    before = np.argmax(served.predict(np.stack([preparation.prepare_upload(data) for _, _, data in uploads])), axis=1)
    now = [read(served, data) for _, _, data in uploads]
    same = np.mean([text == str(int(digit)) for text, digit in zip(now, before)])
    assert same >= 59 / 60, f"{same:.1%} of {len(uploads)} realistic single digits read as prepare_upload reads them"


def test_an_mnist_digit_is_one_digit_read_as_it_is(app):
    from digits.imaging import preparation
    from digits.training import mnist_data

    digit = mnist_data.load_mnist(allow_download=False).x_test[0]
    pixels = preparation.scale_pixels(digit)
    asked = []

    def classify(batch):
        asked.append(batch.copy())
        return classifier.get(app).predict(batch)

    (read,) = segmentation.prepare_number(images.png_bytes(digit), classify=classify)
    assert np.array_equal(read.image, pixels) and not read.cut
    assert len(asked) == 1 and np.array_equal(asked[0], pixels[None])  # The model asked once, for the digit itself.
    assert np.array_equal(read.probabilities, classifier.get(app).predict(pixels[None])[0])
    rows, cols = np.flatnonzero((pixels > preparation.INK_THRESHOLD).any(axis=1)), np.flatnonzero(
        (pixels > preparation.INK_THRESHOLD).any(axis=0))
    assert read.box == {"left": int(cols[0]), "top": int(rows[0]), "width": int(cols[-1] - cols[0] + 1),
                        "height": int(rows[-1] - rows[0] + 1)}
