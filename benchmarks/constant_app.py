"""The serving stack's ceiling: the production app with its image reading replaced by a constant "7".

benchmarks/load.py runs it under gunicorn with gunicorn.conf.py, exactly like the real app: the same worker,
multipart handling, direct upload path, work slots, metrics and CORS. The difference between the two is
what decoding, preparation and the model cost.
"""

from digits.serving import api, service


def _read_as_seven(uploads, served, config):
    """Every upload read as a 7, unlooked at."""
    return [api.Reading([], [], [(7, 1.0)]) for _ in uploads]


def create_app():
    """The real app, reading nothing (in this process only: a gunicorn worker of the benchmark)."""
    api.read_images = _read_as_seven
    return service.create_app()
