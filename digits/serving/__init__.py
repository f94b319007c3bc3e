"""The web service: the app factory, the API, the page, errors as JSON, metrics and the classifier."""

from digits.serving.service import create_app

__all__ = ["create_app"]
