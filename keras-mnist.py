"""Retrain the digit model: `python3 keras-mnist.py` (see --help). The code lives in digits/training/."""

import os
import sys

if __name__ == "__main__":
    # TensorFlow's C++ start-up notes (CPU features, absl) mean nothing to someone training; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from digits.training import trainer

    try:
        trainer.main()
    except KeyboardInterrupt:
        # The model file is written last, to a temporary file renamed into place: an interrupted run leaves
        # the previous model as it was.
        print("\ninterrupted, nothing saved", file=sys.stderr)
        sys.exit(130)
