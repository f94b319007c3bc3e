"""The application factory: defaults, then MNIST_* environment variables, then the caller's config."""

import logging

import flask
import flask_cors

from digits import model_file
from digits.imaging import canvas_png, decoding
from digits.serving import (
    admission,
    allocator,
    api,
    classifier,
    direct_upload,
    errors,
    forms,
    inference_protocol,
    monitoring,
    page,
)

log = logging.getLogger(__name__)

DEFAULTS = {
    "MODEL_PATH": str(model_file.DEFAULT_PATH),
    "MAX_CONTENT_LENGTH": 10 * 1024 * 1024,  # Werkzeug answers 413 before reading a larger body.
    "MAX_IMAGE_PIXELS": decoding.DEFAULT_MAX_PIXELS,
    "MAX_FILES": 16,
    "MAX_REQUEST_PIXELS": decoding.DEFAULT_MAX_PIXELS,  # All of a request's images together: one large photo's worth.
    "MAX_FORM_PARTS": 64,  # Multipart parts per request; MAX_FILES files and a few fields need far fewer.
    "BUSY_SLOTS": 1,  # Requests doing CPU work at once per process: a gunicorn worker runs one at a time anyway.
    "BUSY_WAIT": 2.0,  # Seconds a request waits for a slot before it is answered 503.
    "CORS_ORIGINS": "*",  # As the original: the Angular client runs on another origin (localhost:4200).
    "WARM_UP": True,
    "THREADS": 1,  # Math threads (BLAS, the model's runtime) per process: each server worker is a process on a core.
    "ACCESS_LOG": True,  # One JSON line per request on stderr.
    "DIRECT_UPLOAD": True,  # A plain one-file upload is answered below Flask (direct_upload.py), the same way.
}


def create_app(config=None):
    """Build the digit-recognition app; `config` overrides defaults and environment."""
    app = flask.Flask(__name__, static_folder=None)  # The page blueprint serves its own files.
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("MNIST")  # MNIST_MODEL_PATH, MNIST_MAX_CONTENT_LENGTH, MNIST_CORS_ORIGINS...
    if config:
        app.config.update(config)
    app.json.sort_keys = False  # Keep digit, confidence, probabilities in the order people read them.
    allocator.keep_request_memory()  # Image-sized arrays reuse the heap instead of fresh pages per request.
    if not canvas_png.is_compiled():
        log.warning("digits/imaging/_png_rows.c is not compiled, so canvas PNGs are checked and unfiltered in NumPy, "
                    "slower; `pip install -e .` with a C compiler and Python's headers builds it")
    classifier.init_app(app)  # Loads and warms the model once.
    flask_cors.CORS(app, origins=app.config["CORS_ORIGINS"])
    forms.init_app(app)  # Non-UTF-8 filenames read; each form limit with its own error code.
    app.register_blueprint(api.blueprint)
    app.register_blueprint(page.blueprint)  # The drawing page at GET /.
    app.register_blueprint(inference_protocol.blueprint)  # The Open Inference Protocol (KServe V2) at /v2.
    monitoring.init_app(app)  # /metrics, request timing, JSON access log.
    direct_upload.init_app(app)  # Plain uploads answered below Flask; other requests and all refusals through it.
    admission.init_app(app)  # A POST is read whole, then waits briefly for a work slot or gets a 503.
    errors.init_app(app)
    return app


def quiet_development_server():
    """Silence Werkzeug's own request lines under `python3 app.py`: the JSON access log already has each one."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
