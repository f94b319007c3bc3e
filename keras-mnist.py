"""Retrain the digit model: `python3 keras-mnist.py` (see --help). The code lives in digits/training/."""

import os

if __name__ == "__main__":
    # TensorFlow's C++ start-up notices (CPU features, absl) mean nothing to someone training; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from digits.training import trainer

    trainer.main()  # Ctrl-C: "interrupted, nothing saved", exit status 130.
