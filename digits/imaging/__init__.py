"""Image work: bytes of any image in, the 28x28 MNIST-style digit out (`preparation.prepare_upload`)."""
