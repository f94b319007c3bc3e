"""The committed model, read as the service reads (a refusal is wrong): MNIST's test set and realistic uploads."""

import numpy as np
import pytest

from digits.imaging import preparation
from digits.model_file import DEFAULT_PATH as MODEL_PATH
from digits.serving import classifier, reading
from testsupport import synthetic


@pytest.fixture(scope="module")
def served_model(app):
    """The classifier the app loaded from the committed mnist-neural.h5."""
    return classifier.get(app)


def read(served_model, uploads):
    """What the service reads for encoded uploads, through decoding and preparation; -1 for "not a digit"."""
    digits = np.stack([preparation.prepare_upload(data) for data in uploads])
    readings = reading.read_digits(served_model.predict(digits), served_model.metadata)
    return np.array([-1 if digit is None else digit for digit, _ in readings])


def test_committed_model_reads_the_full_mnist_test_set_as_pngs(served_model, mnist, mnist_test_prepared):
    readings = reading.read_digits(served_model.predict(mnist_test_prepared), served_model.metadata)
    predicted = np.array([-1 if digit is None else digit for digit, _ in readings])  # A refusal counts as wrong.
    accuracy = float(np.mean(predicted == mnist.y_test))
    assert accuracy >= 0.995, f"{accuracy:.2%} on MNIST's 10,000 test images"


def test_committed_model_reads_realistic_uploads(served_model, mnist):
    uploads = synthetic.realistic_set(mnist.x_test, mnist.y_test, count=600, seed=12345)
    predicted = read(served_model, [data for _, _, data in uploads])
    accuracy = float(np.mean(predicted == np.array([label for _, label, _ in uploads])))
    assert accuracy >= 0.985, f"{accuracy:.2%} on 600 canvas drawings, photos, scans, transparent and small images"


def test_committed_model_records_its_own_test_accuracy(served_model):
    assert served_model.path == MODEL_PATH.resolve()
    assert served_model.metadata["test_accuracy"] >= 0.995
    assert served_model.metadata["test_images"] == 10000
