"""The model as a resource of the app: its ONNX export, checked against the .h5, loaded once, warmed up."""

import datetime
import json

import numpy as np

from digits import model_file
from digits.imaging import preparation
from digits.model_file import ModelLoadError

EXTENSION_KEY = "digits.classifier"
CLASS_COUNTS = (10, 11)  # The ten digits, and optionally an eleventh class: "not a digit".


class Classifier:
    """Probabilities of each class (the ten digits, maybe "not a digit") for batches of prepared 28x28 images."""

    def __init__(self, model_path, threads=1):
        """Check the .h5 at model_path has a current export beside it, and load that export on `threads` threads."""
        self.path = model_file.existing_file(model_path)
        self.export_path, facts = model_file.check(self.path)
        import onnxruntime  # Late: only a process that serves needs it.

        options = onnxruntime.SessionOptions()
        # A request is one image: a fraction of a millisecond on one core. The server runs a worker per core,
        # so more threads per worker would only fight the other workers.
        options.intra_op_num_threads = int(threads or 1)
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # Errors only: its warnings are about optimisations on other hardware.
        try:
            self._session = onnxruntime.InferenceSession(str(self.export_path), options,
                                                         providers=["CPUExecutionProvider"])
            self.metadata = json.loads(facts.get(model_file.METADATA_ATTRIBUTE) or "{}")
        except Exception as error:  # ONNX Runtime fails its own ways on a damaged file.
            raise ModelLoadError(f"could not read the exported model {self.export_path}: {error}") from error
        self._input_name, self._input_shape, self.classes = _check_shapes(self._session, self.export_path)
        self.name = facts.get(model_file.MODEL_NAME_KEY, self.path.stem)
        self.parameters = int(facts.get(model_file.PARAMETERS_KEY, 0))
        self.loaded_at = datetime.datetime.now(datetime.UTC)
        self.ready = False

    def warm_up(self):
        """Run one batch through so the first run's set-up happens now, not in the first request."""
        self.predict(np.zeros((1, preparation.IMAGE_SIDE, preparation.IMAGE_SIDE), dtype=np.float32))

    def predict(self, digits):
        """Probabilities (N, K) for prepared digits (N, 28, 28) in 0..1; K is 10, or 11 with "not a digit".

        ONNX Runtime's run() may be called from several threads at once, so no lock is needed.
        """
        batch = np.ascontiguousarray(digits, dtype=np.float32).reshape((-1, *self._input_shape))
        (probabilities,) = self._session.run(None, {self._input_name: batch})
        return probabilities.astype(np.float64)

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


def _check_shapes(session, path):
    """Accept a model reading 28x28 pixels (as (28, 28, 1), (28, 28) or 784) and giving 10 or 11 outputs."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    input_shape = tuple(inputs[0].shape[1:]) if len(inputs) == 1 else ()
    output_shape = tuple(outputs[0].shape[1:]) if len(outputs) == 1 else ()
    pixels = preparation.IMAGE_SIDE * preparation.IMAGE_SIDE
    fixed = all(isinstance(d, int) for d in input_shape) and input_shape
    if not fixed or int(np.prod(input_shape)) != pixels or output_shape not in {(k,) for k in CLASS_COUNTS}:
        shapes = [tuple(i.shape) for i in inputs], [tuple(o.shape) for o in outputs]
        raise ModelLoadError(
            f"the model in {path} maps {shapes[0]} to {shapes[1]}; "
            f"a model from {pixels} pixels (28x28) to 10 digits (or 11 with not-a-digit) is needed"
        )
    return inputs[0].name, input_shape, output_shape[0]


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
