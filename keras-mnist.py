"""Retrain the digit model: `python3 keras-mnist.py` (see --help). The code lives in digits/training/."""

from digits.training import trainer

if __name__ == "__main__":
    trainer.main()
