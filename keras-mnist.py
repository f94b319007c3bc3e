"""Retrain the digit model: `python3 keras-mnist.py` (see --help). The code lives in digits/training.py."""

from digits import training

if __name__ == "__main__":
    training.main()
