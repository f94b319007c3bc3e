"""The drawing page: draw or drop a digit in the browser and see what the model reads, at GET /."""

import flask

# Its own URL for the files: at /static the application's static route would shadow the blueprint's.
blueprint = flask.Blueprint("page", __name__, static_folder="static", static_url_path="/page")


@blueprint.get("/")
def index():
    """The drawing page; its CSS and JavaScript are beside it in digits/static."""
    return blueprint.send_static_file("index.html")
