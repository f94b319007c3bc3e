"""A plain upload read and answered by our worker itself, below gunicorn's request machinery.

gunicorn's parser, environ, response object and hooks cost about 0.25 ms of CPU a request: as much as the
rest of a 28x28 digit's request save the model. For the request nearly every client sends (POST /upload or
/uploads over HTTP/1.1, one Host, one Content-Length of at most direct_upload.MAX_BODY, header fields of
printable ASCII, none that changes how the request is framed, answered or seen: no Transfer-Encoding,
Expect, Upgrade or proxy fields), the worker reads it, builds the environ gunicorn's would hold, calls the
app and writes the answer gunicorn would write (its Server, Date and `Connection: close` fields first, the
app's after them). The app reads the body as it reads gunicorn's, from the socket, so a body that stops
arriving meets the same deadline inside the app. Anything else, or anything this reader is unsure of, goes
back to gunicorn with the bytes read so far in front of the socket, and gunicorn parses, refuses or answers
it exactly as before; what fails is answered by the worker's error handling, as gunicorn's failures are.

Only for servers that use none of what this leaves out (tests/test_upload_lane.py compares environs and
answers with gunicorn's own): one request per connection, plain TCP without TLS or the PROXY protocol,
gunicorn's own pre- and post-request hooks, no access log or StatsD of gunicorn's, no SCRIPT_NAME, no
HTTP/2. Differences kept: no `wsgi.early_hints`, and an answer without a Content-Length (the app gives none
to an upload) is sent with one rather than chunked.
"""

import io
import os
import re

from gunicorn import SERVER, util
from gunicorn.config import PostRequest, PreRequest
from gunicorn.glogging import Logger
from gunicorn.http import errors, wsgi

from digits.serving import direct_upload

SETTING = "MNIST_UPLOAD_LANE"  # "false": every request goes through gunicorn's machinery.
MAX_HEAD = 8190  # Bytes before the body: request line and fields (gunicorn's limit for one field).
MAX_FIELDS = 100  # gunicorn's default limit.
READ_SIZE = 65536

_REQUEST_LINE = re.compile(rb"POST (/uploads?) HTTP/1\.1")
# A field of token characters without "_" (gunicorn drops those), its value printable ASCII, trimmed.
_FIELD = re.compile(rb"([!#$%&'*+.^`|~0-9A-Za-z-]+):[ \t]*((?:[!-~](?:[ \t]*[!-~])*)?)[ \t]*")
# Fields with which gunicorn frames, answers or sees a request otherwise: left to it.
_GUNICORN_FIELDS = re.compile(rb"transfer-encoding|expect|upgrade|http2-settings|te|forwarded|x-forwarded-[!-~]*|"
                              rb"front-end-https|proxy-[!-~]*", re.IGNORECASE)


def for_worker(cfg):
    """An UploadLane for a worker with these settings, or None where it would leave something out."""
    if os.environ.get(SETTING, "true").lower() == "false":
        return None
    plain = (cfg.keepalive == 0 and not cfg.is_ssl and cfg.proxy_protocol == "off" and cfg.protocol == "http"
             and cfg.http2_cleartext == "off" and cfg.accesslog is None and cfg.statsd_host is None
             and cfg.logger_class is Logger and cfg.pre_request is PreRequest.pre_request
             and cfg.post_request is PostRequest.post_request and not os.environ.get("SCRIPT_NAME"))
    return UploadLane(cfg) if plain else None


class UploadLane:
    """Reads a connection's request and, if it is a plain upload, serves it; otherwise hands it back."""

    def __init__(self, cfg):
        self._errors = wsgi.WSGIErrorsWrapper(cfg)
        self._multiprocess = cfg.workers > 1

    def serve(self, sock, listener_name, addr, app):
        """Serve the request on `sock` (a worker.DeadlineSocket) if it is a plain upload: True when answered
        (or when the client sent nothing), False when gunicorn is to take it, the bytes read put back."""
        head = b""
        while (end := head.find(b"\r\n\r\n")) < 0:
            if len(head) > MAX_HEAD:
                return _hand_back(sock, head)
            data = sock.recv(READ_SIZE)
            if not data:
                return _hand_back(sock, head) if head else True
            head += data
        request = _plain_request(head[:end], listener_name) if end <= MAX_HEAD else None
        if request is None:
            return _hand_back(sock, head)
        environ, length = request
        environ.update({
            "wsgi.errors": self._errors, "wsgi.version": (1, 0), "wsgi.multithread": True,
            "wsgi.multiprocess": self._multiprocess, "wsgi.run_once": False,
            "wsgi.file_wrapper": wsgi.FileWrapper, "wsgi.input_terminated": True,
            "SERVER_SOFTWARE": wsgi.SERVER_SOFTWARE, "gunicorn.socket": sock,
            "wsgi.input": io.BufferedReader(_Body(sock, head[end + 4 :], length)),
            "REMOTE_ADDR": addr[0], "REMOTE_PORT": str(addr[1]),
        })
        _respond(sock, app, environ)
        return True


class _Body(io.RawIOBase):
    """The request's body as the app reads it: the bytes already read after the head, then the socket's, up to
    Content-Length (a client that stops early gives a short body; a silent one, the socket's ReadTimeout)."""

    def __init__(self, sock, start, length):
        self._sock, self._start, self._left = sock, start[:length], length

    def readable(self):
        return True

    def readinto(self, buffer):
        if self._left <= 0:
            return 0
        size = min(len(buffer), self._left)
        if self._start:
            data, self._start = self._start[:size], self._start[size:]
        else:
            data = self._sock.recv(size)
        if not data:
            self._left = 0  # The client stopped sending: a short body.
            return 0
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)


def _plain_request(head, listener_name):
    """(the environ's request part, the body's length) of a plain upload's head, or None for any other."""
    lines = head.split(b"\r\n")
    line = _REQUEST_LINE.fullmatch(lines[0])
    if line is None or len(lines) > MAX_FIELDS + 1 or not isinstance(listener_name, tuple):
        return None
    path = line[1].decode()
    environ = {"REQUEST_METHOD": "POST", "QUERY_STRING": "", "RAW_URI": path, "SERVER_PROTOCOL": "HTTP/1.1",
               "wsgi.url_scheme": "http", "SERVER_NAME": listener_name[0], "SERVER_PORT": str(listener_name[1]),
               "PATH_INFO": path, "SCRIPT_NAME": ""}
    length = None
    hosts = 0
    for field in lines[1:]:
        match = _FIELD.fullmatch(field)
        if match is None or _GUNICORN_FIELDS.fullmatch(match[1]):
            return None
        name, value = match[1].decode().upper(), match[2].decode()
        if name == "CONTENT-LENGTH":
            if length is not None or not value.isdigit() or len(value) > 7:
                return None
            length = int(value)
            environ["CONTENT_LENGTH"] = value
        elif name == "CONTENT-TYPE":
            if "CONTENT_TYPE" in environ:
                return None  # gunicorn keeps the last; no client sends two.
            environ["CONTENT_TYPE"] = value
        else:
            hosts += name == "HOST"
            key = "HTTP_" + name.replace("-", "_")
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    if hosts != 1 or length is None or length > direct_upload.MAX_BODY:
        return None
    return environ, length


def _respond(sock, app, environ):
    """Call the app and send its answer as gunicorn's Response would, in one write."""
    answer = {}

    def start_response(status, headers, exc_info=None):
        if "status" in answer and not exc_info:  # With exc_info the answer is replaced: nothing is sent yet.
            raise AssertionError("Response headers already set!")
        if not isinstance(status, str) or not wsgi.STATUS_RE.fullmatch(status):
            raise ValueError(f"Invalid status {status!r}")
        answer["status"], answer["headers"] = status, headers
        return answer.setdefault("written", []).append

    chunks = app(environ, start_response)
    try:
        body = b"".join([*answer.get("written", []), *chunks])
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    if "status" not in answer:
        raise RuntimeError("The app answered without calling start_response.")
    fields, length = [], None
    for name, given in answer["headers"]:
        if not isinstance(name, str) or not wsgi.TOKEN_RE.fullmatch(name):
            raise errors.InvalidResponseHeaderName(f"{name!r}")
        if not isinstance(given, str) or not wsgi.HEADER_VALUE_RE.fullmatch(given):
            raise errors.InvalidResponseHeader(f"{name!r}")
        value = given.strip(" \t")
        if name.lower() == "content-length":
            length = int(value)
        elif util.is_hoppish(name):
            continue  # gunicorn drops hop-by-hop fields (an upload is never answered with an upgrade).
        fields.append(f"{name}: {value}\r\n")
    if length is None:
        fields.append(f"Content-Length: {len(body)}\r\n")
    body = body[:length]  # gunicorn sends no more than the announced length.
    head = (f"HTTP/1.1 {answer['status']}\r\nServer: {SERVER}\r\nDate: {util.http_date()}\r\n"
            f"Connection: close\r\n{''.join(fields)}\r\n")
    sock.sendall(head.encode("latin-1") + body)


def _hand_back(sock, data):
    """Put what was read back in front of the socket's next reads: gunicorn takes the request. False."""
    sock.unread(data)
    return False
