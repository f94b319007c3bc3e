"""The upload lane (digits/serving/upload_lane.py): for the plain uploads it takes, the same environ and the same
answer as gunicorn's own machinery; everything else handed to gunicorn with every byte it read put back."""

import json
import socket
import threading

import pytest
from gunicorn.config import Config
from gunicorn.http import RequestParser, wsgi

from digits.serving import upload_lane, worker
from testsupport import servers
from testsupport.http import multipart
from testsupport.images import CHROMIUM_CANVAS

LISTENER = ("127.0.0.1", 8123)
PEER = ("127.0.0.1", 50123)
CANVAS = CHROMIUM_CANVAS  # A real Chromium canvas PNG.
# Keys whose values are objects of each server's own (compared by what they hold instead), or gunicorn's only.
OWN_OBJECTS = {"wsgi.input", "wsgi.errors", "gunicorn.socket", "wsgi.early_hints"}


def settings(**changes):
    """gunicorn settings as gunicorn.conf.py gives them where they matter here (one request per connection)."""
    cfg = Config()
    for name, value in {"keepalive": 0, "workers": 2, **changes}.items():
        cfg.set(name, value)
    return cfg


def request(path="/upload", fields=(), body=None, method="POST", version="HTTP/1.1", length=None,
            image=b"\x89PNG...", field="file"):
    """Raw request bytes: Host and Content-Length (unless given in fields), and the body; without a body, a form
    of one file (`image` in `field`) with its Content-Type."""
    if body is None:
        body, content_type = multipart(image, boundary="lane-boundary", filename="canvas.png", field=field)
        fields = [("Content-Type", content_type), *fields]
    names = {name.lower() for name, _ in fields}
    head = [f"{method} {path} {version}"]
    head += [] if "host" in names else ["Host: 127.0.0.1:8123"]
    head += [f"{name}: {value}" for name, value in fields]
    if "content-length" not in names:
        head.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def capture(app_environs, answer=b'"7"\n'):
    """A WSGI app that keeps each environ (with its body read) and answers a fixed JSON string."""
    def app(environ, start_response):
        environ["read body"] = environ["wsgi.input"].read()
        app_environs.append(environ)
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
        return [answer]
    return app


def send_then(data, serve):
    """Run serve(server_side_socket) while a client sends `data` (and shuts its writing side); the bytes the
    server side sent back, and serve's result."""
    client, server = socket.socketpair()
    sender = threading.Thread(target=lambda: (client.sendall(data), client.shutdown(socket.SHUT_WR)))
    sender.start()
    try:
        result = serve(server)
        server.close()
        sender.join()
        answer = b"".join(iter(lambda: client.recv(65536), b""))
    finally:
        client.close()
    return answer, result


def through_lane(data, cfg=None):
    """(environ, answer bytes, serve's result, what gunicorn would then read) for the request through the lane."""
    environs = []
    lane = upload_lane.UploadLane(cfg or settings())
    left = []

    def serve(raw):
        sock = worker.DeadlineSocket(raw, wait_for_request=5)
        served = lane.serve(sock, LISTENER, PEER, capture(environs))
        if not served:  # What gunicorn's parser reads next: the bytes put back, then the rest of the socket's.
            left.append(b"".join(iter(lambda: sock.recv(8192), b"")))
        return served

    answer, served = send_then(data, serve)
    return (environs[0] if environs else None), answer, served, b"".join(left)


def through_gunicorn(data, cfg=None):
    """(environ, answer bytes) for the request through gunicorn's parser, environ and response."""
    cfg = cfg or settings()
    environs = []

    def serve(raw):
        req = next(RequestParser(cfg, raw, PEER))
        response, environ = wsgi.create(req, raw, PEER, LISTENER, cfg)
        environ["wsgi.multithread"] = True  # As gunicorn's async workers set it.
        response.force_close()
        for chunk in capture(environs)(environ, response.start_response):
            response.write(chunk)
        response.close()

    answer, _ = send_then(data, serve)
    return environs[0], answer


def without_date(answer):
    """An answer's bytes with its Date field's value blanked (the only field that changes by the second)."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = [b"Date: -" if line.startswith(b"Date: ") else line for line in head.split(b"\r\n")]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


PLAIN = {
    "curl's upload": request(fields=[("User-Agent", "curl/8.5.0"), ("Accept", "*/*")]),
    "the Angular client's, with an Origin": request(fields=[("Origin", "http://localhost:4200"),
                                                            ("Accept", "application/json, text/plain, */*"),
                                                            ("Connection", "keep-alive")]),
    "to /uploads": request(path="/uploads"),
    "field names in any case, values padded": request(fields=[("user-AGENT", " \tpadded\t "), ("X-Empty", "")]),
    "a repeated field": request(fields=[("Accept", "text/plain"), ("Accept", "application/json")]),
    "an empty body": request(body=b"", fields=[("Content-Type", "multipart/form-data; boundary=x")]),
    "a Content-Length with a leading zero": request(body=b"abc", fields=[("Content-Length", "03")]),
    "extra bytes after the body": request(body=b"abc", length=3) + b"trailing",
}


@pytest.mark.parametrize("name", PLAIN)
def test_a_plain_upload_gets_gunicorns_environ_body_and_answer(name):
    environ, answer, served, _ = through_lane(PLAIN[name])
    expected_environ, expected_answer = through_gunicorn(PLAIN[name])
    assert served
    assert {k: v for k, v in environ.items() if k not in OWN_OBJECTS} == \
        {k: v for k, v in expected_environ.items() if k not in OWN_OBJECTS}
    assert set(expected_environ) - set(environ) <= {"wsgi.early_hints"}
    assert without_date(answer) == without_date(expected_answer)


def test_the_real_canvas_upload_gets_gunicorns_environ_and_body():
    data = request(image=CANVAS.read_bytes())
    environ, _, served, _ = through_lane(data)
    expected, _ = through_gunicorn(data)
    assert served and environ["read body"] == expected["read body"] == data.partition(b"\r\n\r\n")[2]


ELSEWHERE = {
    "a query string": request(path="/upload?x=1"),
    "another path": request(path="/predict"),
    "a GET": request(method="GET", body=b""),
    "HTTP/1.0": request(version="HTTP/1.0"),
    "a chunked body": request(fields=[("Transfer-Encoding", "chunked")], body=b"3\r\nabc\r\n0\r\n\r\n"),
    "Expect: 100-continue": request(fields=[("Expect", "100-continue")]),
    "a proxy's scheme": request(fields=[("X-Forwarded-Proto", "https")]),
    "Forwarded": request(fields=[("Forwarded", "for=1.2.3.4")]),
    "an h2c upgrade": request(fields=[("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAAQAAP__")]),
    "an underscore in a field name": request(fields=[("X_Script", "1")]),
    "a byte beyond ASCII": request(fields=[("X-Name", "caf\xe9")]),
    "a folded field": request(fields=[("X-Long", "a\r\n b")]),
    "two Content-Lengths": request(body=b"abc", fields=[("Content-Length", "3"), ("Content-Length", "3")]),
    "a signed Content-Length": request(body=b"abc", fields=[("Content-Length", "+3")]),
    "no Content-Length": b"POST /upload HTTP/1.1\r\nHost: x\r\n\r\n",
    "no Host": request(fields=[("Host", "a"), ("Host", "b")]).replace(b"Host: a\r\nHost: b\r\n", b""),
    "two Hosts": request(fields=[("Host", "a"), ("Host", "b")]),
    "two Content-Types": request(body=b"", fields=[("Content-Type", "a/b"), ("Content-Type", "c/d")]),
    "a body over the direct path's limit": request(body=b"x" * (upload_lane.direct_upload.MAX_BODY + 1)),
    "a head over gunicorn's field limit": request(fields=[("X-Big", "y" * upload_lane.MAX_HEAD)]),
    "a head that never ends": b"POST /upload HTTP/1.1\r\nHost: x\r\nX: " + b"z" * (upload_lane.MAX_HEAD + 10),
    "a request cut short": b"POST /upload HTTP/1.1\r\nHost",
}


@pytest.mark.parametrize("name", ELSEWHERE)
def test_anything_else_goes_to_gunicorn_with_every_byte_it_read_put_back(name):
    environ, answer, served, gunicorn_reads = through_lane(ELSEWHERE[name])
    assert (served, environ, answer) == (False, None, b"")
    assert gunicorn_reads == ELSEWHERE[name]


def test_a_client_that_sends_nothing_is_closed_quietly():
    environ, answer, served, _ = through_lane(b"")
    assert (served, environ, answer) == (True, None, b"")


def test_a_body_cut_short_reaches_the_app_short_as_gunicorns_does():
    data = request(body=b"abc", length=10)
    environ, _, served, _ = through_lane(data)
    expected, _ = through_gunicorn(data)
    assert served and environ["read body"] == expected["read body"] == b"abc"


@pytest.mark.parametrize("change", [{"keepalive": 2}, {"accesslog": "-"}, {"proxy_protocol": "v1"},
                                    {"statsd_host": "127.0.0.1:8125"}, {"http2_cleartext": "upgrade"},
                                    {"pre_request": lambda worker, req: None}])
def test_the_lane_is_off_where_it_would_leave_a_setting_out(change):
    assert upload_lane.for_worker(settings()) is not None
    assert upload_lane.for_worker(settings(**change)) is None


def test_the_lane_is_off_when_asked(monkeypatch):
    monkeypatch.setenv(upload_lane.SETTING, "false")
    assert upload_lane.for_worker(settings()) is None


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory):
    """The production app under gunicorn.conf.py, with the lane and without."""
    log_dir = tmp_path_factory.mktemp("lane")
    one_worker = ["--workers", "1"]
    with servers.Gunicorn(log_dir=log_dir, overrides=one_worker) as lane, \
            servers.Gunicorn(log_dir=log_dir, overrides=one_worker, env={upload_lane.SETTING: "false"}) as plain:
        lane.wait_until_ready()
        plain.wait_until_ready()
        yield lane, plain


def raw_exchange(port, data):
    """Send raw bytes to a server, read its whole answer (it closes the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        return b"".join(iter(lambda: sock.recv(65536), b""))


SERVED = {
    "the canvas": request(image=CANVAS.read_bytes()),
    "the canvas from the Angular client": request(image=CANVAS.read_bytes(), fields=[("Origin", "http://localhost:4200")]),
    "a text file": request(image=b"not an image at all"),
    "the wrong field": request(image=CANVAS.read_bytes(), field="image"),
    "an empty body": request(body=b"", fields=[("Content-Type", "multipart/form-data; boundary=x")]),
    "a query string (gunicorn's lane)": request(path="/upload?x=1", image=CANVAS.read_bytes()),
}


def test_the_production_settings_put_the_workers_in_the_lane(two_servers):
    lane, plain = two_servers
    raw_exchange(lane.port, SERVED["the canvas"])
    assert "in the upload lane" in lane.log_path.read_text()
    assert "in the upload lane" not in plain.log_path.read_text()


@pytest.mark.parametrize("name", SERVED)
def test_a_server_answers_the_same_bytes_with_the_lane_and_without(two_servers, name):
    lane, plain = two_servers
    data = SERVED[name]
    # Each server twice: the app answers an origin's first upload through Flask (direct_upload.py), then directly.
    answers = [without_date([raw_exchange(server.port, data) for _ in range(2)][1]) for server in (lane, plain)]
    assert answers[0] == answers[1]
    assert answers[0].startswith(b"HTTP/1.1 ") and json.loads(answers[0].partition(b"\r\n\r\n")[2]) is not None
