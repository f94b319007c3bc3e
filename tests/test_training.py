"""The trainer end to end in --quick mode, reproducibility, safe saving, and the offline data loader."""

import gzip
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from digits import PROJECT_ROOT, model_file
from digits.serving import classifier
from digits.training import mnist_data
from digits.training import trainer as training


def run_quick(tmp_path, name, *extra):
    """Run `keras-mnist.py --quick` in its own process; return its metrics.json."""
    output, report = tmp_path / f"{name}.h5", tmp_path / f"{name}-report"
    command = [sys.executable, "keras-mnist.py", "--quick", "--output", str(output), "--report-dir", str(report),
               *extra]
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Test accuracy" in result.stdout and "Per digit" in result.stdout
    assert "pipeline check" in result.stdout  # A --quick run never passes for a real model.
    # Library notices that mean nothing to someone training stay out of the output.
    assert "cpu_feature_guard" not in result.stderr and "HDF5 file" not in result.stderr + result.stdout
    assert "E0000" not in result.stderr and "absl::InitializeLog" not in result.stderr
    return output, report, json.loads((report / "metrics.json").read_text())


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick training run shared by the tests that inspect it."""
    return run_quick(tmp_path_factory.mktemp("quick"), "first")


def test_quick_run_writes_a_model_the_service_loads(quick_run):
    output, _, metrics = quick_run
    served = classifier.Classifier(output)
    probabilities = served.predict(np.zeros((2, 28, 28), dtype=np.float32))
    assert probabilities.shape == (2, 11)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert served.metadata["test_accuracy"] == metrics["test_accuracy"]


def test_quick_run_reports_metrics_and_plots(quick_run):
    _, report, metrics = quick_run
    assert (report / "learning_curves.png").stat().st_size > 1000
    assert (report / "confusion_matrix.png").stat().st_size > 1000
    assert np.sum(metrics["confusion_matrix"]) == metrics["test_images"] == training.QUICK_TEST
    assert set(metrics["per_digit_accuracy"]) == {str(d) for d in range(10)}
    assert metrics["settings"]["seed"] == 1 and metrics["settings"]["quick"] is True
    assert len(metrics["data_sha256"]) == 64 and metrics["versions"]["tensorflow"]


def test_same_seed_gives_the_same_result(quick_run, tmp_path):
    _, _, first = quick_run
    _, _, second = run_quick(tmp_path, "second")
    assert second["test_accuracy"] == first["test_accuracy"]
    assert second["history"]["loss"] == first["history"]["loss"]


def test_ctrl_c_says_nothing_was_saved_and_exits_130(tmp_path):
    output = tmp_path / "interrupted.h5"
    command = [sys.executable, "keras-mnist.py", "--quick", "--output", str(output), "--report-dir",
               str(tmp_path / "report")]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}  # Lines as they are printed, not at exit.
    with subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as run:
        for line in run.stdout:  # Interrupt once the data is ready and training is about to start.
            if line.startswith("MNIST from"):
                run.send_signal(signal.SIGINT)
                break
        _, errors = run.communicate(timeout=300)
    assert run.returncode == 130 and "interrupted, nothing saved" in errors
    assert not output.exists() and not (tmp_path / "report").exists()


class Boom(Exception):
    """Stands for a crash or Ctrl-C while the model is being written."""


class ModelThatFailsToSave:
    """Writes half a file, then fails, like a run interrupted during save."""

    def save(self, path):
        """Leave a partial file behind and fail."""
        with open(path, "wb") as stream:
            stream.write(b"half a model")
        raise Boom()


def test_an_interrupted_save_leaves_the_old_model_intact(tmp_path):
    target = tmp_path / "mnist-neural.h5"
    target.write_bytes(b"the old, good model")
    with pytest.raises(Boom):
        model_file.save_atomically(ModelThatFailsToSave(), target, {"test_accuracy": 0.5})
    assert target.read_bytes() == b"the old, good model"
    assert list(tmp_path.iterdir()) == [target]


def test_hub_pickle_with_the_wrong_hash_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    payload = tmp_path / "mnist.pkl.gz"
    with gzip.open(payload, "wb") as stream:  # A pickle that would create a file when loaded.
        stream.write(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    with pytest.raises(mnist_data.DataError, match="refusing to unpickle"):
        mnist_data.load_hub_pickle(payload)
    assert not marker.exists()


def test_idx_files_and_npz_load_the_same_data(mnist, tmp_path):
    for name, stem in mnist_data.IDX_FILES.items():
        array = getattr(mnist, name)
        header = b"\0\0\x08" + bytes([array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        compressed = name.startswith("y")  # Labels gzipped, images plain: both forms are read.
        with (gzip.open(tmp_path / (stem + ".gz"), "wb") if compressed else open(tmp_path / stem, "wb")) as stream:
            stream.write(header + array.astype(np.uint8).tobytes())
    from_idx = mnist_data.load_path(tmp_path)
    mnist_data.save_cache(from_idx, tmp_path / "copy.npz")
    assert from_idx.sha256 == mnist_data.load_path(tmp_path / "copy.npz").sha256 == mnist.sha256


def test_wrongly_shaped_data_is_refused(tmp_path):
    np.savez(tmp_path / "small.npz", x_train=np.zeros((10, 28, 28)), y_train=np.zeros(10),
             x_test=np.zeros((10, 28, 28)), y_test=np.zeros(10))
    with pytest.raises(mnist_data.DataError, match="x_train has shape"):
        mnist_data.load_path(tmp_path / "small.npz")


def test_missing_data_without_downloads_says_what_to_do(tmp_path):
    with pytest.raises(mnist_data.DataError, match="python3 -m digits.training.mnist_data"):
        mnist_data.load_mnist(cache_path=tmp_path / "none.npz", allow_download=False)


def test_cached_data_is_the_real_mnist(mnist):
    assert np.bincount(mnist.y_train).tolist()[:2] == [5923, 6742]  # MNIST's known class counts.
    assert mnist.x_train.dtype == np.uint8 and mnist.x_train.shape == (60000, 28, 28)


@pytest.mark.parametrize("group", ["TRAINING", "HELD_OUT"])
def test_every_non_digit_template_draws_a_prepared_image(group):
    from digits.training import negatives

    templates = getattr(negatives, group)
    rng = np.random.default_rng(0)
    for name, template in templates.items():
        for _ in range(3):
            drawn = negatives.draw(template, rng)
            assert drawn.shape == (28, 28) and drawn.max() > 0.5, name
    assert not set(negatives.TRAINING) & set(negatives.HELD_OUT)  # Refusing held-out templates must generalise.


def test_small_digits_are_counted_bitmaps_like_old_scanner_digits(mnist):
    from digits.training import small_digits

    rng = np.random.default_rng(0)
    shrunk = [small_digits.shrink(mnist.x_train[index], 8, rng) for index in range(40)]
    assert all(image.shape == (8, 8) and image.min() >= 0 and image.max() <= 1 for image in shrunk)
    # Some are black-and-white 32x32 bitmaps counted in 4x4 blocks: ink in sixteenths, 17 levels.
    assert any(np.allclose(image * 16, np.round(image * 16)) and image.max() == 1 for image in shrunk)
    # The digit fills the box's height, as in scikit-learn's 8x8 digits, within two pixels.
    assert all(np.ptp(np.flatnonzero(image.max(axis=1) > 0)) + 1 >= 6 for image in shrunk)
