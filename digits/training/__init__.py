"""The trainer behind keras-mnist.py: MNIST offline, augmentation, the CNN, its report."""
