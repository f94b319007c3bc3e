"""From the model's probabilities to what the service answers: a digit, or "not a digit".

A model with an 11th output (trained by keras-mnist.py on generated non-digits) records in its metadata
which output means "not a digit" and the threshold chosen on validation data; a drawing is refused when
that output is the most likely or when the best digit's probability is below the threshold. A model with
ten outputs and no such record reads every image as its most likely digit, as before.
"""

import numpy as np

DIGITS = 10


def rejection_rule(metadata):
    """(class index, threshold) from a model's metadata, or None for a model that never refuses."""
    rejection = (metadata or {}).get("rejection")
    if not rejection:
        return None
    return int(rejection["class_index"]), float(rejection["threshold"])


def read_digits(probabilities, metadata):
    """One (digit or None, confidence) per row of probabilities; None means "not a digit".

    The confidence is the digit's probability, or for a refusal the probability that it is no digit at all.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape((-1, probabilities.shape[-1]))
    rule = rejection_rule(metadata) if probabilities.shape[1] > DIGITS else None
    readings = []
    for row in probabilities:
        digit = int(np.argmax(row[:DIGITS]))
        best = float(row[digit])
        if rule is not None and (int(np.argmax(row)) == rule[0] or best < rule[1]):
            readings.append((None, 1.0 - best))
        else:
            readings.append((digit, best))
    return readings


def digit_probabilities(row):
    """The ten digits' probabilities of one row (an 11th, "not a digit", output left out)."""
    return np.asarray(row, dtype=np.float64)[:DIGITS]
