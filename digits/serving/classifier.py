"""The Keras model as a resource of the app: loaded once, checked, compiled, warmed up, thread-safe."""

import datetime
import threading

import numpy as np

from digits import model_file
from digits.imaging import preparation
from digits.model_file import ModelLoadError

EXTENSION_KEY = "digits.classifier"


class Classifier:
    """Probabilities of the ten digits for batches of prepared 28x28 images."""

    def __init__(self, model_path, threads=None):
        """Load and check the model at model_path, and compile its forward pass on `threads` threads."""
        self.path = model_file.existing_file(model_path)
        import keras  # Late: TensorFlow takes seconds to import, and only the classifier needs it.
        import tensorflow as tf

        if threads:
            _limit_threads(tf, threads)

        try:
            model = keras.saving.load_model(self.path, compile=False)
            self.metadata = model_file.read_metadata(self.path)
        except Exception as error:  # h5py, Keras and TensorFlow each fail their own way on a bad file.
            raise ModelLoadError(f"could not read the model file {self.path}: {error}") from error
        self._input_shape = _check_shapes(model, self.path)
        self.name = model.name
        self.parameters = int(model.count_params())
        # A traced graph, not model.predict(): predict() rebuilds a data pipeline per call (tens of ms). Its
        # concrete function is called directly, skipping tf.function's argument matching: 0.1 ms a call.
        self._forward = tf.function(
            lambda images: model(images, training=False),
            input_signature=[tf.TensorSpec((None, *self._input_shape), tf.float32)],
        ).get_concrete_function()
        self._model = model  # Held with the graph that reads its weights, whatever TensorFlow keeps alive itself.
        # One call at a time: TensorFlow's graphs are thread-safe in practice, the lock makes it certain
        # under a threaded server at no cost to a single-threaded worker.
        self._lock = threading.Lock()
        self.loaded_at = datetime.datetime.now(datetime.UTC)
        self.ready = False

    def warm_up(self):
        """Run one batch through so the first run's set-up happens now, not in the first request."""
        self.predict(np.zeros((1, preparation.IMAGE_SIDE, preparation.IMAGE_SIDE), dtype=np.float32))

    def predict(self, digits):
        """Probabilities (N, 10), or (N, 11) with "not a digit", for prepared digits (N, 28, 28) in 0..1."""
        batch = np.asarray(digits, dtype=np.float32).reshape((-1, *self._input_shape))
        with self._lock:
            probabilities = self._forward(batch)
        return np.asarray(probabilities, dtype=np.float64)

    def describe(self):
        """What /health and /model tell about the model."""
        return {
            "name": self.name,
            "file": self.path.name,
            "parameters": self.parameters,
            "loaded_at": self.loaded_at.isoformat(timespec="seconds"),
        }


def limit_math_threads(threads):
    """Cap BLAS and OpenMP pools in this process, whatever the environment said when NumPy loaded.

    A server worker is one process per core; threads inside it only fight the other workers for the cores
    (OpenBLAS's spinning threads slow the preparation's small least-squares fit many times over).
    """
    import threadpoolctl

    threadpoolctl.threadpool_limits(limits=int(threads))


def _limit_threads(tf, threads):
    """One image takes a fraction of a millisecond: more threads per worker only fight the other workers."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow already started in this process (a test that trained first): keep its pools.


def _check_shapes(model, path):
    """Accept a model reading 28x28 pixels (as (28, 28, 1), (28, 28) or 784) giving 10 digits (+ "not a digit")."""
    input_shape = tuple(model.input_shape[1:])
    pixels = preparation.IMAGE_SIDE * preparation.IMAGE_SIDE
    if int(np.prod([d or 0 for d in input_shape])) != pixels or tuple(model.output_shape[1:]) not in {(10,), (11,)}:
        raise ModelLoadError(
            f"the model in {path} maps {model.input_shape} to {model.output_shape}; "
            f"a model from {pixels} pixels (28x28) to 10 digits is needed (or to 11 outputs, the 11th 'not a digit')"
        )
    return input_shape


def init_app(app):
    """Load the model named by MODEL_PATH onto the app (THREADS math threads), warmed up unless WARM_UP is false."""
    limit_math_threads(app.config["THREADS"])
    classifier = Classifier(app.config["MODEL_PATH"], threads=app.config["THREADS"])
    if app.config["WARM_UP"]:
        classifier.warm_up()
    classifier.ready = True
    app.extensions[EXTENSION_KEY] = classifier


def get(app):
    """The app's classifier."""
    return app.extensions[EXTENSION_KEY]
