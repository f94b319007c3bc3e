"""Start the digit-recognition service for development: `python3 app.py [--host H] [--port P] [--model F]`.

For production use gunicorn with gunicorn.conf.py (see the README).
"""

import argparse
import functools
import os
import socket
import sys

READ_TIMEOUT = 15  # Seconds a connection of the development server may stay silent while sending its request.


def parse_args(argv=None):
    """Host, port and model from flags, falling back to MNIST_HOST, MNIST_PORT, MNIST_MODEL_PATH."""
    parser = argparse.ArgumentParser(description="Serve handwritten-digit recognition over HTTP.")
    parser.add_argument("--host", default=os.environ.get("MNIST_HOST", "127.0.0.1"),
                        help="address to listen on (default: %(default)s; MNIST_HOST)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MNIST_PORT", "5000")),
                        help="port (default: %(default)s; MNIST_PORT)")
    parser.add_argument("--model", default=os.environ.get("MNIST_MODEL_PATH"),
                        help="Keras .h5 model file (default: mnist-neural.h5 beside app.py; MNIST_MODEL_PATH)")
    return parser.parse_args(argv)


def port_is_free(host, port):
    """Whether host:port can be listened on now, so a busy port is reported before the model loads."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # As the server itself will.
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def main(argv=None):
    """Build the app (loading the model) and serve it with Flask's threaded server."""
    args = parse_args(argv)
    if not port_is_free(args.host, args.port):
        sys.exit(f"error: cannot start: {args.host}:{args.port} is in use or not ours to listen on; "
                 "choose another with --port or MNIST_PORT")
    from digits import model_file
    from digits.serving import service

    try:
        app = service.create_app({"MODEL_PATH": args.model} if args.model else None)
    except model_file.ModelLoadError as error:
        sys.exit(f"error: cannot start: {error}")
    service.quiet_development_server()  # Our JSON access log replaces Werkzeug's coloured request lines.
    print(f"Serving on http://{args.host}:{args.port}/ (Ctrl-C to stop)", file=sys.stderr, flush=True)
    # Debug mode stays off: it would run a code-executing debugger on errors.
    app.run(host=args.host, port=args.port, debug=False, threaded=True, request_handler=_request_handler_class())


def _request_handler_class():
    """Werkzeug's request handler, dropping a connection silent for READ_TIMEOUT seconds."""
    from werkzeug import serving

    class RequestHandler(serving.WSGIRequestHandler):
        timeout = READ_TIMEOUT  # A thread per connection: a client that stops sending must not keep one forever.

    return RequestHandler


@functools.cache
def _wsgi_app():
    """The app, built once, on first use."""
    from digits.serving import service

    return service.create_app()


def __getattr__(name):
    """`gunicorn app:app` works too: the app (and its model) is built when a worker first asks for it."""
    if name == "app":
        return _wsgi_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
