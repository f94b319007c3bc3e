"""Operations: Prometheus metrics at /metrics, and logs as JSON lines (one per request, one per error).

Under gunicorn each worker is a process; with PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py sets it)
the workers share their counters through files there, and /metrics adds them up.
"""

import json
import logging
import os
import sys
import time

import flask
import prometheus_client
from prometheus_client import multiprocess

REQUESTS = prometheus_client.Counter(
    "digits_http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"])
LATENCY = prometheus_client.Histogram(
    "digits_http_request_duration_seconds", "Time to answer a request", ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0))
PREDICTIONS = prometheus_client.Counter("digits_predictions_total", "Digits predicted", ["digit"])
ERRORS = prometheus_client.Counter("digits_errors_total", "Errors answered, by kind", ["error"])

KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
STARTED_KEY = "digits.started"  # The environ key of a request's time.perf_counter() start, set below Flask.

access_log = logging.getLogger("digits.access")
blueprint = flask.Blueprint("monitoring", __name__)
_children = {}  # (metric, label values) -> its child: labels() checks its arguments and locks every time.


def _child(metric, *values):
    """metric.labels(*values), looked up once per process and label values (few: routes, statuses, digits, codes)."""
    child = _children.get((metric, values))
    if child is None:
        child = _children[(metric, values)] = metric.labels(*values)
    return child


def record_predictions(digits):
    """Count each predicted digit."""
    for digit in digits:
        _child(PREDICTIONS, str(int(digit))).inc()


def record_error(code):
    """Count an error answer by its code."""
    _child(ERRORS, code).inc()


@blueprint.get("/metrics")
def metrics():
    """Prometheus text exposition, summed over all workers in multiprocess mode."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.REGISTRY
    try:
        body = prometheus_client.generate_latest(registry)
    except FileNotFoundError:  # A dead worker's file was archived and removed as we read: read again.
        body = prometheus_client.generate_latest(registry)
    # content_type, not mimetype: the constant already names its charset, and Flask would add a second one.
    return flask.Response(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)


def _start_timer():
    """Note when the request started (earlier, if a layer below Flask noted it under STARTED_KEY)."""
    flask.g.started = flask.request.environ.get(STARTED_KEY) or time.perf_counter()


def _observe(response):
    """Count and time the request, and log it as one JSON line."""
    seconds = time.perf_counter() - flask.g.get("started", time.perf_counter())
    rule = flask.request.url_rule
    endpoint = rule.rule if rule else "unmatched"  # Never the raw path: it would let clients create labels.
    record_request(flask.request.method, endpoint, response.status_code, seconds)
    if flask.current_app.config["ACCESS_LOG"]:
        log_request(flask.request.method, flask.request.path, response.status_code, seconds,
                    response.calculate_content_length(), flask.request.remote_addr)
    return response


def record_request(method, endpoint, status, seconds):
    """Count and time one answered request; endpoint is its route's rule ("/upload"), never the raw path."""
    method = method if method in KNOWN_METHODS else "other"  # Any token is a method.
    _child(REQUESTS, method, endpoint, str(status)).inc()
    _child(LATENCY, endpoint).observe(seconds)


def log_request(method, path, status, seconds, size, remote):
    """The access log's JSON line for one request."""
    access_log.info("request", extra={"fields": {
        "method": method, "path": path[:200], "status": status, "ms": round(seconds * 1000, 2), "bytes": size,
        "remote": remote,
    }})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request's fields, any traceback."""

    def format(self, record):
        """The record as a JSON line."""
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage(), **getattr(record, "fields", {})}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def init_app(app):
    """Register /metrics and the timing hooks; our loggers write JSON lines on stderr (requests if ACCESS_LOG)."""
    app.register_blueprint(blueprint)
    app.before_request(_start_timer)
    app.after_request(_observe)
    # Only our own loggers (digits.*: the access log, the error log) get the JSON handler; the root logger and
    # other libraries' loggers stay as the host process set them up.
    logger = logging.getLogger("digits")
    if not any(isinstance(handler.formatter, JsonFormatter) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
