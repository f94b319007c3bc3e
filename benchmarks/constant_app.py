"""The serving stack's ceiling: the same POST /upload, multipart parsed and read, answered with a constant "7".

benchmarks/load.py runs it under gunicorn with gunicorn.conf.py, exactly like the real app, so the
difference between the two is what decoding, preparation and the model cost.
"""

import flask


def create_app():
    """A Flask app with the real app's upload route shape and no work behind it."""
    app = flask.Flask(__name__)

    @app.post("/upload")
    def upload():
        """Read the uploaded file as the real route does, then answer without looking at it."""
        flask.request.files["file"].read()
        return flask.jsonify("7")

    @app.get("/ready")
    def ready():
        """Always ready: there is nothing to load."""
        return flask.jsonify(ready=True)

    return app
