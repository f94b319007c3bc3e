"""Handwritten digit recognition: MNIST preparation, training and the web service."""
