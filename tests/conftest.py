"""Shared fixtures: the app and its test client, MNIST, and a real `python3 app.py` on a free port."""

import sys

import numpy as np
import pytest

from digits import PROJECT_ROOT, model_file
from digits.serving import service
from digits.training import mnist_data
from testsupport import servers

MODEL_PATH = model_file.DEFAULT_PATH


@pytest.fixture(scope="session")
def app():
    """One app for the session: loading the model takes a while."""
    return service.create_app({"TESTING": True, "MODEL_PATH": str(MODEL_PATH), "ACCESS_LOG": False})


@pytest.fixture()
def client(app):
    """Flask's test client."""
    return app.test_client()


@pytest.fixture(scope="session")
def mnist():
    """MNIST from the local cache (`python3 -m digits.training.mnist_data` puts it there)."""
    return mnist_data.load_mnist(allow_download=False)


@pytest.fixture(scope="session")
def mnist_test_prepared(mnist):
    """MNIST's 10,000 test digits as the service sees them: each a PNG upload, through prepare_upload."""
    from digits.imaging import preparation
    from testsupport import images

    return np.stack([preparation.prepare_upload(images.png_bytes(digit)) for digit in mnist.x_test])


@pytest.fixture(scope="session")
def live_server_process(tmp_path_factory):
    """`python3 app.py` as users start it, on a free port: yields (base URL, process)."""
    port = servers.free_port()
    command = [sys.executable, str(PROJECT_ROOT / "app.py"), "--port", str(port), "--model", str(MODEL_PATH)]
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    with servers.running_server(command, port, log_path=log_path) as started:
        yield started


@pytest.fixture(scope="session")
def live_server(live_server_process):
    """The base URL of the real server process."""
    return live_server_process[0]
