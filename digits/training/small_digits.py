"""MNIST digits as small scans give them: shrunk to 8-16 pixels, sometimes enlarged again, then prepared.

A digit uploaded at 8x8 has lost most of its shape before preparation enlarges it to the 20x20 box; the
model learns to read such blurred, blocky digits from MNIST's own digits made small the same way and passed
through the service's preparation, so they look exactly like a small upload does. The way is that of old
scanner digit sets such as scikit-learn's 8x8 (made as NIST's were: a 32x32 bitmap, its ink counted in 4x4
blocks, so 17 grey levels): the digit fills the height of the box, narrow digits are widened, strokes are
thick, and the bitmap is often black and white before it is counted.
"""

import numpy as np
from PIL import Image
from scipy import ndimage

from digits.imaging import exceptions, preparation

SIDES = (8, 8, 8, 8, 9, 10, 12, 14, 16)  # Pixels per side of the small image; 8x8 (old scanner digits) the most.
ENLARGED_PROBABILITY = 0.4  # Small images are often enlarged (blurred) before they are sent.
SUPERSAMPLE = 4  # The digit is drawn at 4x the small side, then averaged down: a sensor's blocks.
THICKER_PROBABILITY = 0.6  # Scanned pens are broad: a stroke is often a quarter of an 8x8 image wide.
BITMAP_PROBABILITY = 0.5  # A black-and-white bitmap counted in blocks (17 levels), as NIST's digits were made.


def shrink(digit, side, rng):
    """One 28x28 uint8 MNIST digit as a side x side float image in 0..1, ink bright, with a margin."""
    rows, cols = np.flatnonzero(digit.max(axis=1)), np.flatnonzero(digit.max(axis=0))
    crop = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / 255.0
    if rng.random() < THICKER_PROBABILITY:
        crop = ndimage.grey_dilation(np.pad(crop, 1), size=(3, 3))
    large = side * SUPERSAMPLE
    inner = large - int(rng.integers(0, 2 * SUPERSAMPLE + 1))  # A margin of nothing to two pixels.
    height, width = crop.shape
    # Small scans widen narrow digits: a 1 to about half the box, never to a block.
    aspect = min(1.0, max(width / height * rng.uniform(1.0, 1.3), rng.uniform(0.4, 0.75)))
    new_width = min(inner, max(2, round(inner * aspect))) if height >= width else inner
    new_height = inner if height >= width else min(inner, max(2, round(inner * height / width)))
    canvas = np.zeros((large, large), np.float32)
    top, left = (large - new_height) // 2, (large - new_width) // 2
    canvas[top : top + new_height, left : left + new_width] = np.asarray(
        Image.fromarray(crop).resize((new_width, new_height), Image.Resampling.BILINEAR))
    if rng.random() < BITMAP_PROBABILITY:
        canvas = (canvas >= rng.uniform(0.3, 0.6)).astype(np.float32)
        return np.asarray(Image.fromarray(canvas).resize((side, side), Image.Resampling.BOX))
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
