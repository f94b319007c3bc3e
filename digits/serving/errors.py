"""Every error leaves as JSON of one shape: {"error": code, "message": text, "status": number}."""

import logging

import flask
from werkzeug import exceptions as http

from digits.imaging.exceptions import DigitInputError
from digits.serving import monitoring

log = logging.getLogger(__name__)


class TooManyFiles(http.RequestEntityTooLarge):
    """More `file` fields in one request than MAX_FILES."""

    error_code = "too_many_files"


class MissingFile(http.BadRequest):
    """The request carries no multipart field named `file`."""

    error_code = "missing_file"


# Werkzeug's own errors whose generic name would say less than ours.
_WERKZEUG_CODES = {http.RequestEntityTooLarge: "file_too_large"}  # From MAX_CONTENT_LENGTH.


def error_response(status, code, message, headers=None):
    """The JSON body and status every error shares."""
    monitoring.record_error(code)
    response = flask.jsonify(error=code, message=message, status=status)
    response.status_code = status
    if headers:
        response.headers.extend(headers)
    return response


def _http_error(error):
    """Werkzeug's HTTP errors (404, 405, 413 from MAX_CONTENT_LENGTH, ...) as JSON."""
    code = getattr(error, "error_code", None) or _WERKZEUG_CODES.get(type(error)) or _snake_case(error.name)
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return error_response(error.code, code, error.description, headers)


def _input_error(error):
    """Our own refusals of an upload (not an image, no digit, too many pixels...)."""
    return error_response(error.status, error.code, str(error))


def _unexpected_error(error):
    """A bug of ours: logged with its traceback, answered as JSON, never as an HTML page."""
    log.exception("unhandled error in %s %s", flask.request.method, flask.request.path)
    return error_response(500, "internal_error", "The server failed to handle this request; it has been logged.")


def _snake_case(name):
    """'Method Not Allowed' -> 'method_not_allowed'."""
    return "_".join(name.lower().replace("-", " ").split())


def init_app(app):
    """Register the JSON error handlers."""
    app.register_error_handler(http.HTTPException, _http_error)
    app.register_error_handler(DigitInputError, _input_error)
    app.register_error_handler(Exception, _unexpected_error)
