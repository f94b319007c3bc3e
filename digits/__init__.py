"""Handwritten digit recognition: MNIST preparation, training and the web service."""

import os

# NumPy's OpenBLAS threads spin after each call and steal the cores from the other server workers, which
# made the small least-squares fit in preparation 5 to 20 times slower under load. BLAS reads this once,
# when NumPy loads, so it is set here, before any module of ours imports NumPy; an explicit value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
