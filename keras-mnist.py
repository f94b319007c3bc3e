"""Retrain the digit model: `python3 keras-mnist.py` (see --help). The code lives in digits/training/."""

import os

if __name__ == "__main__":
    # TensorFlow's C++ log (CPU features, absl, an "E0000" about a tf.data attribute it does not know) means
    # nothing to someone training; a real failure still raises a Python exception with its message.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from digits.training import trainer

    trainer.main()  # Ctrl-C: "interrupted, nothing saved", exit status 130.
