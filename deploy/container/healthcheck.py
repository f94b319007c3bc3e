"""The image's HEALTHCHECK: exit 0 when /health answers 200 on the port gunicorn listens on, 1 otherwise."""

import os
import sys
import urllib.request


def health_url():
    """/health on loopback, at the port of MNIST_BIND or PORT (as gunicorn.conf.py binds)."""
    bind = os.environ.get("MNIST_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
    port = bind.rsplit(":", 1)[1]
    return f"http://127.0.0.1:{port}/health"


if __name__ == "__main__":
    try:
        with urllib.request.urlopen(health_url(), timeout=4) as response:
            sys.exit(0 if response.status == 200 else 1)
    except OSError as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        sys.exit(1)
