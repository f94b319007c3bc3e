"""Uploads answered below Flask (direct_upload.py) get exactly Flask's answers, and whatever it is unsure of
goes through Flask."""

import gc
import io
import logging
import random
import time

import pytest
from werkzeug import formparser

from digits import PROJECT_ROOT
from digits.imaging import exceptions
from digits.serving import admission, api, direct_upload, monitoring, service
from testsupport import images
from testsupport.http import multipart

BOUNDARY = "----WebKitFormBoundaryq2sWLxa0Jn9dF4cU"  # As Chromium writes one.
ORIGINS = [None, "http://localhost:4200", "http://elsewhere.example"]
# Werkzeug leaves the spooled file of a form cut short unclosed, for the garbage collector to close; the tests
# that send such forms collect it themselves, under this filter.
werkzeug_leaves_files_open = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _app(**config):
    return service.create_app({"TESTING": True, "ACCESS_LOG": False, **config})


@pytest.fixture(scope="module")
def apps():
    """(direct, through Flask only) pairs of apps, for the default CORS origins and for one named origin."""
    return {origins: (_app(CORS_ORIGINS=origins), _app(CORS_ORIGINS=origins, DIRECT_UPLOAD=False))
            for origins in ("*", "http://localhost:4200")}


def _post(app, body, content_type, origin=None, path="/upload", **headers):
    """status, headers, body of a raw POST, as a client sends it."""
    if origin:
        headers["Origin"] = origin
    response = app.test_client().post(path, data=body, content_type=content_type, headers=headers)
    return response.status, sorted(response.headers.items()), response.data


def _flask_calls(app):
    """A counter of the requests that reach Flask's request handling in app."""
    calls = []
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: calls.append(1))
    return calls


UPLOADS = {
    "chromium canvas": lambda: images.CHROMIUM_CANVAS.read_bytes(),
    "drawn canvas": lambda: images.canvas_png(),
    "28x28 PNG": lambda: images.encode(images.drawn_digit(side=28, width=2)),
    "JPEG photo": lambda: (PROJECT_ROOT / "samples" / "digit.jpg").read_bytes(),
    "number": lambda: (PROJECT_ROOT / "samples" / "number.png").read_bytes(),
    "not an image": lambda: b"hello",
    "blank canvas": lambda: images.canvas_png(strokes=()),
    "truncated PNG": lambda: images.canvas_png()[:300],
}


@pytest.mark.parametrize("name", list(UPLOADS))
@pytest.mark.parametrize("origins", ["*", "http://localhost:4200"])
def test_answers_are_flasks_for_every_origin(apps, name, origins):
    direct, through_flask = apps[origins]
    body, content_type = multipart(UPLOADS[name](), boundary=BOUNDARY, filename="canvas.png")
    for origin in ORIGINS * 2:  # The second round is answered from the headers learnt in the first.
        for path in direct_upload.PATHS:
            expected = _post(through_flask, body, content_type, origin, path)
            assert _post(direct, body, content_type, origin, path) == expected, (origin, path)


def test_a_plain_upload_does_not_reach_flask_once_its_origin_is_known():
    app = _app()
    calls = _flask_calls(app)
    body, content_type = multipart(images.canvas_png(), boundary=BOUNDARY)
    for origin in ("http://localhost:4200", "http://localhost:4200", None, None, None):
        status, _, answer = _post(app, body, content_type, origin)
        assert (status, answer) == ("200 OK", b'"7"\n')
    assert len(calls) == 2  # One per origin, to learn its headers.
    _post(app, b"", "text/plain", "http://localhost:4200")
    assert len(calls) == 3  # Anything else goes through Flask.


def test_switched_off_every_upload_goes_through_flask():
    app = _app(DIRECT_UPLOAD=False)
    calls = _flask_calls(app)
    body, content_type = multipart(images.canvas_png(), boundary=BOUNDARY)
    for _ in range(3):
        _post(app, body, content_type)
    assert len(calls) == 3


def _forms():
    """Requests the direct path must leave to Flask: (name, body, content type, extra headers)."""
    png = images.canvas_png()
    body, content_type = multipart(png, boundary=BOUNDARY)
    part = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + png + b"\r\n"
    end = f"--{BOUNDARY}--\r\n".encode()
    return [
        ("two files", part + part + end, content_type),
        ("a text field too", part + f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n'.encode()
         + end, content_type),
        ("no filename", body.replace(b'; filename="digit.png"', b""), content_type),
        ("another field name", body.replace(b'name="file"', b'name="File"'), content_type),
        ("a preamble", b"preamble\r\n" + body, content_type),
        ("an epilogue", body + b"epilogue", content_type),
        ("no closing boundary", body[: body.rindex(b"\r\n--")], content_type),
        ("a non-ASCII filename", body.replace(b"digit.png", "zifra-é.png".encode()), content_type),
        ("a Latin-1 filename", body.replace(b"digit.png", "zifra-é.png".encode("latin-1")), content_type),
        ("a header continued", body.replace(b"Content-Type: image/png", b"Content-Type:\r\n image/png"), content_type),
        ("another part header", body.replace(b"Content-Type:", b"X-Note: 1\r\nContent-Type:"), content_type),
        ("the boundary in the file", multipart(png + b"\n--" + BOUNDARY.encode() + b"\r\nx", BOUNDARY)[0],
         content_type),
        ("a quoted boundary", body, f'multipart/form-data; boundary="{BOUNDARY}"'),
        ("a charset too", body, content_type + "; charset=utf-8"),
        ("the wrong boundary", body, "multipart/form-data; boundary=other"),
        ("a JSON body", b'{"file": 1}', "application/json"),
        ("a body too large", multipart(png + b"\0" * direct_upload.MAX_BODY, BOUNDARY)[0], content_type),
    ]


@werkzeug_leaves_files_open
@pytest.mark.parametrize("name, body, content_type", _forms(), ids=[form[0] for form in _forms()])
def test_forms_it_is_unsure_of_get_flasks_answer(apps, name, body, content_type):
    direct, through_flask = apps["*"]
    _post(direct, *multipart(images.canvas_png(), boundary=BOUNDARY))  # Origin learnt: the direct path is open.
    assert _post(direct, body, content_type) == _post(through_flask, body, content_type)
    gc.collect()  # Here, under this test's filter.


@werkzeug_leaves_files_open
def test_a_body_shorter_than_declared_is_refused_as_flask_refuses_it(apps):
    direct, through_flask = apps["*"]
    body, content_type = multipart(images.canvas_png(), boundary=BOUNDARY)
    answers = []
    for app in (direct, through_flask):
        _post(app, body, content_type)
        response = app.test_client().post("/upload", input_stream=io.BytesIO(body[:-100]), content_type=content_type,
                                          headers={"Content-Length": str(len(body))})
        answers.append((response.status, response.data))
    assert answers[0] == answers[1]
    assert answers[0][0].startswith("400")
    gc.collect()


def test_the_content_length_limit_still_holds():
    app = _app(MAX_CONTENT_LENGTH=1000)
    body, content_type = multipart(images.canvas_png(width=200) + b"\0" * 2000, boundary=BOUNDARY)
    _post(app, *multipart(b"x" * 10, boundary=BOUNDARY))
    status, _, answer = _post(app, body, content_type)
    assert status.startswith("413") and b"file_too_large" in answer


def _counter(name, **labels):
    value = monitoring.prometheus_client.REGISTRY.get_sample_value(name, labels)
    return value or 0.0


def test_direct_answers_and_their_refusals_are_counted_once(apps):
    direct, _ = apps["*"]
    body, content_type = multipart(images.canvas_png(), boundary=BOUNDARY)
    _post(direct, body, content_type)
    labels = {"method": "POST", "endpoint": "/upload"}
    before = [_counter("digits_http_requests_total", **labels, status=status) for status in ("200", "415")]
    sevens = _counter("digits_predictions_total", digit="7")
    errors = _counter("digits_errors_total", error="unsupported_media_type")
    _post(direct, body, content_type)
    _post(direct, *multipart(b"not an image", boundary=BOUNDARY))
    after = [_counter("digits_http_requests_total", **labels, status=status) for status in ("200", "415")]
    assert [b - a for a, b in zip(before, after)] == [1, 1]
    assert _counter("digits_predictions_total", digit="7") == sevens + 1
    assert _counter("digits_errors_total", error="unsupported_media_type") == errors + 1


def test_direct_answers_are_logged_as_flasks_are():
    app = _app(ACCESS_LOG=True)
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.fields)
    monitoring.access_log.addHandler(handler)
    try:
        for _ in range(2):
            _post(app, *multipart(images.canvas_png(), boundary=BOUNDARY))
    finally:
        monitoring.access_log.removeHandler(handler)
    assert [{key: value for key, value in line.items() if key != "ms"} for line in lines] == [
        {"method": "POST", "path": "/upload", "status": 200, "bytes": 4, "remote": "127.0.0.1"}] * 2


def test_a_busy_server_answers_503_with_retry_after():
    app = _app(BUSY_WAIT=0.01)
    body, content_type = multipart(images.canvas_png(), boundary=BOUNDARY)
    _post(app, body, content_type)
    admission.take_slot(app)  # The one slot held, as by a request in progress.
    try:
        status, headers, answer = _post(app, body, content_type)
    finally:
        admission.release_slot(app)
    assert status.startswith("503") and ("Retry-After", "1") in headers and b"overloaded" in answer
    assert _post(app, body, content_type)[0] == "200 OK"  # The slot was given back.


def _werkzeug_files(body, boundary):
    """What Werkzeug's (and our forms.py's) form parsing finds: ({field: [values]}, {field: [file bytes]}), or
    None when it refuses the form."""
    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": f"multipart/form-data; boundary={boundary.decode()}",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    try:
        _, form, files = formparser.parse_form_data(environ)
    except Exception:
        return None
    return form.to_dict(flat=False), {key: [f.read() for f in files.getlist(key)] for key in files}


@werkzeug_leaves_files_open
def test_what_it_reads_werkzeug_reads_the_same(app):  # The session's app has set up forms.py's parser.
    """Random damage to a plain form: whenever the direct parser takes a form, Werkzeug finds in it one file, in
    the field `file`, with the same bytes, and nothing else."""
    rng = random.Random(7)
    boundary = BOUNDARY.encode()
    pieces = [b"\r\n", b"\n", b"\r", b"--", b" ", b'"', b"\\", b";", b"x", b"\r\n\r\n", b"--" + boundary,
              b"\r\n--" + boundary, b"\r\n--" + boundary + b"--", b'name="file"', b'filename="a"', b"\xc3\xa9"]
    plain, _ = multipart(b"\x89PNG data\r\n-", boundary=BOUNDARY)
    taken = 0
    for _ in range(4000):
        body = bytearray(plain)
        for _ in range(rng.randint(1, 3)):
            start = rng.randrange(len(body) + 1)
            body[start : start + rng.randint(0, 3)] = rng.choice(pieces)
        body = bytes(body)
        file = direct_upload._single_file(body, boundary)
        if file is not None:
            taken += 1
            assert _werkzeug_files(body, boundary) == ({}, {"file": [body[file]]}), body
    assert taken > 100  # Enough of the damage left a form it takes, so the comparison means something.
    gc.collect()


def test_a_refusal_handed_to_flask_is_timed_from_its_start(monkeypatch):
    app = _app()
    body, content_type = multipart(images.canvas_png(), boundary=BOUNDARY)
    _post(app, body, content_type)  # Origin learnt: the next upload is read below Flask.

    def slow_refusal(uploads, served, config):
        time.sleep(0.2)
        raise exceptions.NotADigit("not a digit")

    monkeypatch.setattr(api, "read_images", slow_refusal)
    before = _counter("digits_http_request_duration_seconds_sum", endpoint="/upload")
    assert _post(app, body, content_type)[0].startswith("422")
    assert _counter("digits_http_request_duration_seconds_sum", endpoint="/upload") - before >= 0.2
