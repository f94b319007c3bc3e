"""POST /upload of one small image answered below Flask: what the Angular client and curl send.

Per request, Flask's request context, routing, form parser, response object and hooks cost about as much as
reading a 28x28 image. For the request nearly every upload is (a POST to /upload or /uploads whose body, at
most MAX_BODY bytes, is a multipart form of exactly one part: a file in the field `file`), this WSGI
middleware reads the form itself, takes a work slot as admission.py does, reads the image with the route's
own code (api.read_images), and answers what the route answers, counted and logged as monitoring.py does.

Everything else goes through Flask unchanged: any other request, any form this parser is not sure of (it
hands the body over as read), and every refusal or failure (handed over with its exception, which a hook
raises inside Flask, so error answers have one source). The headers Flask's hooks add to an answer (CORS's)
depend only on the request's Origin: they are learnt from Flask's own 200 answer to the first upload from
each origin, and repeated.
"""

import io
import re
import time

import flask

from digits.serving import admission, api, classifier, monitoring

CONFIG_KEY = "DIRECT_UPLOAD"  # False: every upload goes through Flask (MNIST_DIRECT_UPLOAD=false).
PATHS = ("/upload", "/uploads")
# Larger uploads (photos) go through Flask, whose form parser spools a file over 500 kB to disk: a request
# waiting for a work slot then holds no more memory here than there. Their decoding dwarfs Flask's cost anyway.
MAX_BODY = 500 * 1024
MAX_ORIGINS = 64  # Origins whose headers are remembered; requests from any others go through Flask.
HANDED_ERROR = "digits.direct_upload.error"  # The environ key of an exception handed over to Flask.

# A form's content type with a boundary of RFC 2046's characters, quoted or not, and nothing else.
_CONTENT_TYPE = re.compile(r'multipart/form-data;\s*boundary=(?:"([0-9A-Za-z\'()+_\-./:=?]{1,70})"|'
                           r'([0-9A-Za-z\'()+_\-./:=?]{1,70}))\s*', re.IGNORECASE)
# A part's headers: printable ASCII only (Werkzeug splits lines at more characters than CR and LF), the field
# name exactly "file" (field names are case-sensitive), any filename without quotes or backslashes in it.
_DISPOSITION = re.compile(rb'(?i:content-disposition):[ \t]*(?i:form-data);[ \t]*name="file";[ \t]*'
                          rb'filename="[ !#-\[\]-~]*"[ \t]*')
_PART_TYPE = re.compile(rb"(?i:content-type):[ \t]*[!-~][ -~]*")


class DirectUpload:
    """The WSGI middleware around a Flask app's wsgi_app."""

    def __init__(self, app, flask_wsgi_app):
        self._app = app
        self._flask = flask_wsgi_app
        self._headers = {}  # Origin (None for none) -> the headers of Flask's 200 answer to an upload.

    def __call__(self, environ, start_response):
        if (environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in PATHS
                or not self._app.config[CONFIG_KEY]):
            return self._flask(environ, start_response)
        started = time.perf_counter()
        origin = environ.get("HTTP_ORIGIN")
        headers = self._headers.get(origin)
        boundary = _boundary(environ.get("CONTENT_TYPE", ""))
        length = _content_length(environ, min(MAX_BODY, self._app.config["MAX_CONTENT_LENGTH"] or MAX_BODY))
        if headers is None or boundary is None or length is None:
            return self._through_flask(environ, start_response, origin)
        body = environ["wsgi.input"].read(length)
        file = _single_file(body, boundary) if len(body) == length else None
        if file is None:
            return self._hand_over(environ, start_response, body)
        try:
            text = self._read(body, file)
        except Exception as error:  # Refusals and failures alike are answered by Flask's error handlers.
            environ[monitoring.STARTED_KEY] = started  # Timed from here, as the work was.
            return self._hand_over(environ, start_response, body, error)
        answer = (self._app.json.dumps(text) + "\n").encode()
        start_response("200 OK", [*headers, ("Content-Length", str(len(answer)))])
        seconds = time.perf_counter() - started
        monitoring.record_request("POST", environ["PATH_INFO"], 200, seconds)
        if self._app.config["ACCESS_LOG"]:
            monitoring.log_request("POST", environ["PATH_INFO"], 200, seconds, len(answer), environ.get("REMOTE_ADDR"))
        return [answer]

    def _read(self, body, file):
        """What the route answers for the image body[file], read in a work slot (and only there copied out)."""
        admission.take_slot(self._app)
        try:
            return api.read_images([body[file]], classifier.get(self._app), self._app.config)[0].text
        finally:
            admission.release_slot(self._app)

    def _hand_over(self, environ, start_response, body, error=None):
        """Flask answers the request, its body already read; with `error`, as if its route had raised it."""
        environ["wsgi.input"] = io.BytesIO(body)
        if error is not None:
            environ[HANDED_ERROR] = error
        return self._flask(environ, start_response)

    def _through_flask(self, environ, start_response, origin):
        """Flask answers the request; from a 200 answer the headers for this origin are learnt."""

        def noting_start_response(status, headers, exc_info=None):
            if status.startswith("200 ") and origin not in self._headers and len(self._headers) < MAX_ORIGINS:
                self._headers[origin] = [(name, value) for name, value in headers if name.lower() != "content-length"]
            return start_response(status, headers, exc_info)

        return self._flask(environ, noting_start_response)


def _boundary(content_type):
    """The boundary of a multipart/form-data content type as bytes, or None for anything else."""
    found = _CONTENT_TYPE.fullmatch(content_type)
    return None if found is None else (found.group(1) or found.group(2)).encode("ascii")


def _content_length(environ, limit):
    """The declared body length if it is at most limit, else None (no length: a chunked body, say)."""
    declared = environ.get("CONTENT_LENGTH", "")
    if not declared.isdigit() or not declared.isascii():
        return None
    length = int(declared)
    return length if 0 < length <= limit else None


def _single_file(body, boundary):
    """Where in body (a slice) the file is, for a form of one part holding a file in the field `file`; or None.

    Strict on purpose: no preamble, no epilogue but a line break, only Content-Disposition and Content-Type
    headers, and the boundary nowhere inside the file. Whatever this leaves, Flask's parser reads.
    """
    marker = b"--" + boundary
    opening, closing = marker + b"\r\n", b"\r\n" + marker + b"--"
    end = body.rfind(closing)
    if not body.startswith(opening) or end < 0 or body[end + len(closing) :] not in (b"", b"\r\n"):
        return None
    headers_end = body.find(b"\r\n\r\n", len(opening) - 2, end)
    if headers_end < 0:
        return None
    if body.find(marker, headers_end + 4, end) >= 0 or not _sound_headers(body[len(opening) : headers_end]):
        return None
    return slice(headers_end + 4, end)


def _sound_headers(block):
    """Whether a part's headers are one Content-Disposition naming the field `file` with a filename, and at most
    one Content-Type."""
    lines = block.split(b"\r\n")
    dispositions = [line for line in lines if _DISPOSITION.fullmatch(line)]
    types = [line for line in lines if _PART_TYPE.fullmatch(line)]
    return len(dispositions) == 1 and len(types) <= 1 and len(lines) == len(dispositions) + len(types)


def _raise_handed_error():
    """Inside Flask, raise the exception the middleware handed over, so Flask's error handlers answer it."""
    error = flask.request.environ.pop(HANDED_ERROR, None)
    if error is not None:
        raise error


def init_app(app):
    """Answer plain uploads below Flask (unless DIRECT_UPLOAD is false). Call after monitoring.init_app (its timer
    starts first) and before admission.init_app (a handed-over error takes no work slot)."""
    app.before_request(_raise_handed_error)
    app.wsgi_app = DirectUpload(app, app.wsgi_app)
