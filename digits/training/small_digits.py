"""MNIST digits as small scans give them: shrunk to 8-12 pixels, sometimes enlarged again, then prepared.

A digit uploaded at 8x8 has lost most of its shape before preparation enlarges it to the 20x20 box; the
model learns to read such blurred, blocky digits from MNIST's own digits made small the same way (the
digit fitted into a square with a margin, averaged into blocks, quantised to a scanner's few grey levels)
and passed through the service's preparation, so they look exactly like a small upload does.
"""

import numpy as np
from PIL import Image

from digits.imaging import exceptions, preparation

SIDES = (8, 8, 8, 9, 10, 12)  # Pixels per side of the small image; 8x8 (old scanner digits) the most.
ENLARGED_PROBABILITY = 0.4  # Small images are often enlarged (blurred) before they are sent.
SUPERSAMPLE = 4  # The digit is drawn at 4x the small side, then averaged down: a sensor's blocks.


def shrink(digit, side, rng):
    """One 28x28 uint8 MNIST digit as a side x side float image in 0..1, ink bright, with a margin."""
    rows, cols = np.flatnonzero(digit.max(axis=1)), np.flatnonzero(digit.max(axis=0))
    crop = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / 255.0
    large = side * SUPERSAMPLE
    inner = large - int(rng.integers(2, 2 * SUPERSAMPLE + 1))  # A margin of half a pixel to two pixels.
    height, width = crop.shape
    # Small scans stretch narrow digits towards the square: a 1 is widened a little, never to a block.
    stretch = rng.uniform(1.0, 1.6)
    new_width = min(inner, max(2, round(inner * width / height * stretch))) if height >= width else inner
    new_height = inner if height >= width else min(inner, max(2, round(inner * height / width)))
    canvas = np.zeros((large, large), np.float32)
    top, left = (large - new_height) // 2, (large - new_width) // 2
    canvas[top : top + new_height, left : left + new_width] = np.asarray(
        Image.fromarray(crop).resize((new_width, new_height), Image.Resampling.BILINEAR))
    small = np.asarray(Image.fromarray(canvas).resize((side, side), Image.Resampling.BOX))
    levels = int(rng.choice([16, 256]))
    return np.round(np.clip(small, 0.0, 1.0) * levels) / levels


def generate(images, labels, count, seed):
    """`count` small versions of randomly chosen digits, prepared as uploads: (count, 28, 28) float32 and labels."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(labels), size=count, replace=False)
    prepared, kept = [], []
    for index in chosen:
        small = shrink(images[index], int(rng.choice(SIDES)), rng)
        if rng.random() < ENLARGED_PROBABILITY:
            side = small.shape[0] * 2
            small = np.asarray(Image.fromarray(small.astype(np.float32)).resize((side, side),
                                                                                Image.Resampling.BILINEAR))
        try:
            prepared.append(preparation.normalize_digit(small))
            kept.append(index)
        except exceptions.DigitInputError:
            continue  # Shrunk to nothing the preparation can see: no such upload would be read either.
    return np.stack(prepared).astype(np.float32), labels[np.array(kept)]
