"""The HTTP API through Flask's test client: answers, their shapes, and every error path."""

import base64
import io
import os

import numpy as np
import pytest
from PIL import Image

from digits import PROJECT_ROOT
from testsupport import images

CANVAS_SEVEN = images.encode(images.drawn_digit(images.SEVEN))
CANVAS_ONE = images.encode(images.drawn_digit(images.ONE))


def post(client, path, *files, **kwargs):
    """POST files as multipart field `file` (canvas.png like the Angular client)."""
    data = {"file": [(io.BytesIO(content), "canvas.png") for content in files]}
    return client.post(path, data=data, content_type="multipart/form-data", **kwargs)


@pytest.mark.parametrize("path", ["/upload", "/uploads"])
def test_original_paths_answer_a_bare_json_digit(client, path):
    response = post(client, path, CANVAS_SEVEN)
    assert response.status_code == 200
    assert response.is_json and response.get_json() == "7"


def test_predict_answers_digit_confidence_probabilities_and_the_image_seen(client):
    body = post(client, "/predict", CANVAS_SEVEN).get_json()
    assert body["digit"] == 7
    assert len(body["probabilities"]) == 10 and sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-3)
    assert body["confidence"] == max(body["probabilities"]) == body["probabilities"][7]
    prefix = "data:image/png;base64,"
    assert body["image"].startswith(prefix)
    seen = Image.open(io.BytesIO(base64.b64decode(body["image"][len(prefix):])))
    assert seen.size == (28, 28) and np.asarray(seen).max() > 200


def test_predict_answers_several_files_in_order(client):
    body = post(client, "/predict", CANVAS_ONE, CANVAS_SEVEN, CANVAS_ONE).get_json()
    assert [result["digit"] for result in body["results"]] == [1, 7, 1]


def test_mnist_style_image_is_read(client, mnist):
    index = int(np.flatnonzero(mnist.y_test == 3)[0])
    assert post(client, "/upload", images.png_bytes(mnist.x_test[index])).get_json() == "3"


def error_of(response):
    """Status and error code, after checking the body is our JSON error shape."""
    assert response.is_json, response.data[:200]
    body = response.get_json()
    assert set(body) == {"error", "message", "status"} and body["status"] == response.status_code
    assert body["message"]
    return response.status_code, body["error"]


@pytest.mark.parametrize(
    "files, expected",
    [
        pytest.param([b""], (400, "empty_file"), id="empty-file"),
        pytest.param([b"just some text"], (415, "unsupported_media_type"), id="text"),
        pytest.param([os.urandom(3000)], (415, "unsupported_media_type"), id="random-bytes"),
        pytest.param([CANVAS_SEVEN[:500]], (400, "corrupt_image"), id="truncated-png"),
        pytest.param([images.png_bomb(20000, 20000)], (413, "image_too_large"), id="bomb"),
        pytest.param([images.encode(Image.new("L", (400, 400), 0))], (422, "no_digit_found"), id="blank-canvas"),
        pytest.param([images.encode(Image.new("L", (1, 1), 0))], (422, "no_digit_found"), id="1x1"),
        pytest.param([CANVAS_SEVEN] * 17, (413, "too_many_files"), id="too-many-files"),
    ],
)
@pytest.mark.parametrize("path", ["/upload", "/predict"])
def test_bad_uploads_get_specific_json_errors(client, path, files, expected):
    assert error_of(post(client, path, *files)) == expected


def test_one_bad_file_of_several_fails_the_request_naming_it(client):
    response = post(client, "/predict", CANVAS_SEVEN, b"text")
    assert error_of(response) == (415, "unsupported_media_type")
    assert response.get_json()["message"].startswith("File 2 of 2")


def test_no_file_field_is_a_400(client):
    response = client.post("/upload", data={"image": "x"}, content_type="multipart/form-data")
    assert error_of(response) == (400, "missing_file")


def test_raw_body_without_multipart_is_a_400(client):
    response = client.post("/upload", data=CANVAS_SEVEN, content_type="image/png")
    assert error_of(response) == (400, "missing_file")


def test_upload_over_the_size_limit_is_a_413(client, app):
    # The multipart body is built here: the test client would spool a large one to an unclosed temp file.
    oversized = b"\0" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n'
            + oversized + b"\r\n--b--\r\n")
    response = client.post("/upload", data=body, content_type="multipart/form-data; boundary=b")
    assert error_of(response) == (413, "file_too_large")
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert f"{limit:,} bytes" in response.get_json()["message"]  # The message states the limit.


def test_unknown_path_is_a_json_404(client):
    assert error_of(client.get("/no/such/page")) == (404, "not_found")


def test_wrong_method_is_a_json_405_naming_the_allowed_ones(client):
    response = client.get("/upload")
    assert error_of(response) == (405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_cors_lets_the_angular_client_in(client):
    origin = "http://localhost:4200"
    preflight = client.options("/upload", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    assert preflight.headers["Access-Control-Allow-Origin"] in (origin, "*")
    response = post(client, "/upload", CANVAS_SEVEN, headers={"Origin": origin})
    assert response.headers["Access-Control-Allow-Origin"] in (origin, "*")


def test_cors_origins_are_configurable(app):
    from digits.serving import service

    restricted = service.create_app({"TESTING": True, "MODEL_PATH": app.config["MODEL_PATH"],
                                     "CORS_ORIGINS": ["http://allowed.example"], "WARM_UP": False,
                                     "ACCESS_LOG": False})
    client = restricted.test_client()
    allowed = post(client, "/upload", CANVAS_SEVEN, headers={"Origin": "http://allowed.example"})
    other = post(client, "/upload", CANVAS_SEVEN, headers={"Origin": "http://other.example"})
    assert allowed.headers.get("Access-Control-Allow-Origin") == "http://allowed.example"
    assert "Access-Control-Allow-Origin" not in other.headers


def test_the_drawing_page_and_its_files_are_served(client):
    with client.get("/") as page:  # Files are streamed: close the responses.
        assert page.status_code == 200 and page.mimetype == "text/html"
        html = page.get_data(as_text=True)
    assert 'id="canvas"' in html and "page/page.js" in html
    assert "http://" not in html and "https://" not in html  # Nothing fetched from elsewhere.
    for asset in ("/page/page.js", "/page/page.css"):
        with client.get(asset) as response:
            assert response.status_code == 200


def test_health_names_the_model_and_when_it_loaded(client):
    body = client.get("/health").get_json()
    assert body["status"] == "ok"
    assert body["model"]["file"] == "mnist-neural.h5" and body["model"]["loaded_at"]


def test_ready_after_warm_up(client):
    assert client.get("/ready").get_json() == {"ready": True}


def test_ready_without_warm_up_too():
    from digits.serving import service

    cold = service.create_app({"TESTING": True, "WARM_UP": False, "ACCESS_LOG": False}).test_client()
    response = cold.get("/ready")
    assert response.status_code == 200 and response.get_json() == {"ready": True}


def test_metrics_name_their_charset_once(client):
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.count("charset") == 1 and content_type.startswith("text/plain")



def test_model_exposes_its_training_record(client):
    training = client.get("/model").get_json()["training"]
    assert training["test_accuracy"] > 0.9
    assert len(training["data_sha256"]) == 64 and "settings" in training and "versions" in training


def test_an_unexpected_error_is_a_json_500(app):
    from digits.serving import service

    broken = service.create_app({"TESTING": False, "MODEL_PATH": app.config["MODEL_PATH"], "WARM_UP": False,
                                 "ACCESS_LOG": False})

    @broken.get("/boom")
    def boom():
        raise RuntimeError("a bug of ours")

    assert error_of(broken.test_client().get("/boom")) == (500, "internal_error")


@pytest.mark.parametrize(("sample", "digit"), [("digit.png", "7"), ("digit.jpg", "2"), ("number.png", "2026")])
def test_the_readmes_sample_images_read_as_it_says(client, sample, digit):
    path = PROJECT_ROOT / "samples" / sample
    response = client.post("/uploads", data={"file": (io.BytesIO(path.read_bytes()), sample)})
    assert response.status_code == 200 and response.get_json() == digit
