"""From the model's probabilities to what the service answers: a digit, or "not a digit".

A model with an 11th output (trained by keras-mnist.py on generated non-digits) records in its metadata
which output means "not a digit" and the threshold chosen on validation data; an image is refused when
that output's probability is at least the threshold. A model with ten outputs and no such record reads
every image as its most likely digit, as before.
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

    The confidence is the digit's probability, or for a refusal the probability of "not a digit".
    """
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape((-1, probabilities.shape[-1]))
    rule = rejection_rule(metadata) if probabilities.shape[1] > DIGITS else None
    readings = []
    for row in probabilities:
        if rule is not None and row[rule[0]] >= rule[1]:
            readings.append((None, float(row[rule[0]])))
        else:
            digit = int(np.argmax(row[:DIGITS]))
            readings.append((digit, float(row[digit])))
    return readings


def digit_probabilities(row):
    """The ten digits' probabilities of one row (an 11th, "not a digit", output left out)."""
    return np.asarray(row, dtype=np.float64)[:DIGITS]
