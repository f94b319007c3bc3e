"""Every error leaves as JSON of one shape: {"error": code, "message": text, "status": number}."""

import logging

import flask
from werkzeug import exceptions as http

from digits.imaging.exceptions import DigitInputError
from digits.serving import monitoring

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request we refuse for what it is as a request (not for an image in it): a status and a string code."""

    status = 400
    code = "bad_request"
    headers = ()


class TooManyFiles(ApiError):
    """More `file` fields in one request than MAX_FILES."""

    status = 413
    code = "too_many_files"


class MissingFile(ApiError):
    """The request carries no multipart field named `file`."""

    status = 400
    code = "missing_file"


class TooManyPixelsInRequest(ApiError):
    """The request's images add up to more pixels than MAX_REQUEST_PIXELS; refused from their headers."""

    status = 413
    code = "too_many_pixels_in_request"


class Overloaded(ApiError):
    """Every work slot stayed busy for the whole short wait: come back in a moment rather than queue."""

    status = 503
    code = "overloaded"

    def __init__(self, message, retry_after=1):
        """A refusal telling the client, in Retry-After, how many seconds to wait."""
        super().__init__(message)
        self.headers = [("Retry-After", str(retry_after))]


class FileRefused(ApiError):
    """One file of several was refused: its own error's status and code, with a message naming which file."""

    def __init__(self, index, count, cause):
        """File `index` (0-based) of `count` failed with `cause`, one of our input errors."""
        super().__init__(f"File {index + 1} of {count}: {cause}")
        self.status, self.code = cause.status, cause.code


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
    return error_response(error.code, code, _describe(error), headers)


def _describe(error):
    """Werkzeug's description, with the limit stated where Werkzeug leaves it out."""
    if type(error) is http.RequestEntityTooLarge:
        limit = flask.current_app.config["MAX_CONTENT_LENGTH"]
        return f"The request is larger than the limit of {limit:,} bytes ({limit / 2**20:g} MiB)."
    return error.description


def _input_error(error):
    """Our own refusals of a request or an upload (no file, not an image, no digit, too many pixels...)."""
    return error_response(error.status, error.code, str(error), getattr(error, "headers", None))


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
    app.register_error_handler(ApiError, _input_error)
    app.register_error_handler(Exception, _unexpected_error)
