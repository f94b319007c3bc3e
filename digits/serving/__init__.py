"""The web service: the app factory, the API, the page, errors as JSON, metrics and the classifier."""

__all__ = ["create_app"]


def __getattr__(name):
    """`create_app`, imported on first use: gunicorn's master imports our worker before the metrics folder exists."""
    if name == "create_app":
        from digits.serving.service import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
