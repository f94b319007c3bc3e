"""Numbers of several digits made from MNIST test digits, for the tests and the numbers benchmark.

Digits are set side by side on one line with random gaps: most apart, some nearly touching, some touching
or overlapping a little, each a little different in size and height on the line, as people write. Each
maker returns encoded image bytes the way users send them: the Angular client's wide canvas (400 pixels
tall, black, white 15 px round strokes), MNIST's own pixels side by side, phone photos and scans.
"""

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from testsupport import synthetic

# Gaps between neighbours, in digit heights: (weight, low, high). Negative gaps overlap.
GAPS = [(0.55, 0.08, 0.45), (0.25, 0.0, 0.08), (0.2, -0.08, 0.0)]
APART = [(0.7, 0.08, 0.45), (0.3, 0.02, 0.08)]  # Some nearly touching, none touching.


def line_of(patches, heights, rng, gaps=GAPS):
    """Lay float patches (ink 1) side by side on one line, with random gaps and wobble; return the strip."""
    line_height = max(heights)
    lefts, tops, right = [], [], 0.0
    for index, patch in enumerate(patches):
        if index:
            _, low, high = gaps[int(rng.choice(len(gaps), p=[g[0] for g in gaps]))]
            right += rng.uniform(low, high) * line_height
        lefts.append(max(0, round(right)))
        # Bottom-aligned on the line, wobbling a little.
        tops.append(round(line_height * 1.1 - patch.shape[0] + rng.uniform(-0.06, 0.06) * line_height))
        right = lefts[-1] + patch.shape[1]
    top_min = min(tops)
    strip = np.zeros((max(t - top_min + p.shape[0] for t, p in zip(tops, patches)), round(right) + 1), np.float32)
    for patch, left, top in zip(patches, lefts, tops):
        region = strip[top - top_min : top - top_min + patch.shape[0], left : left + patch.shape[1]]
        np.maximum(region, patch[: region.shape[0], : region.shape[1]], out=region)
    return strip


def pen_strokes(digits, rng, height, pen_width, gaps=GAPS):
    """The digits redrawn as pen strokes about `height` pixels tall, on one line."""
    heights = [height * rng.uniform(0.85, 1.0) for _ in digits]
    patches = [synthetic.stroke_mask(digit, h, pen_width) for digit, h in zip(digits, heights)]
    return line_of(patches, [p.shape[0] for p in patches], rng, gaps)


def canvas_number(digits, rng, gaps=GAPS):
    """The Angular client on a wide canvas: 400 pixels tall, black, white 15 px round strokes."""
    strip = pen_strokes(digits, rng, height=rng.uniform(150, 280), pen_width=15, gaps=gaps)
    width = max(600, strip.shape[1] + int(rng.integers(40, 200)))
    if width > 2400:  # Too wide for a canvas: draw it smaller.
        strip = _resize(strip, 2300 / strip.shape[1])
        width = 2400
    return synthetic.encode_pixels(_place(strip, (400, width), rng) * 255, "PNG")


def mnist_number(digits, rng, gaps=GAPS):
    """MNIST's own pixels side by side (cropped to their ink), light on dark or dark on light, maybe enlarged."""
    patches = [_crop(digit.astype(np.float32) / 255) for digit in digits]
    strip = line_of(patches, [p.shape[0] for p in patches], rng, gaps)
    scale = float(rng.choice([1.0, 2.0, 3.0]))
    image = _place(_resize(strip, scale) if scale != 1 else strip,
                   (round(strip.shape[0] * scale) + 12, round(strip.shape[1] * scale) + 12), rng)
    return synthetic.encode_pixels((1 - image if rng.random() < 0.5 else image) * 255, "PNG")


def photo_number(digits, rng, gaps=GAPS):
    """A phone photo of a number written on paper: tinted, unevenly lit, noisy, blurred, JPEG."""
    width, height = [(1024, 768), (1600, 1200)][int(rng.integers(2))]
    digit_height = rng.uniform(0.15, 0.3) * height
    strip = pen_strokes(digits, rng, digit_height, digit_height * rng.uniform(0.06, 0.11), gaps)
    ink = _place(strip, (height, width), rng)
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    paper = rng.uniform(0.7, 0.95) + rng.uniform(-0.15, 0.15) * (xx - 0.5) + rng.uniform(-0.15, 0.15) * (yy - 0.5)
    tint = np.array([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.85, 1.0)])
    ink_colour = np.array([0.1, 0.12, 0.45]) if rng.random() < 0.4 else np.array([0.12, 0.12, 0.12])
    darkness = rng.uniform(0.7, 1.0) * ink[..., None]
    rgb = paper[..., None] * tint * (1 - darkness) + ink_colour * darkness
    rgb = ndimage.gaussian_filter(rgb, sigma=(rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.2), 0))
    rgb += rng.normal(0, rng.uniform(0.005, 0.02), rgb.shape)
    buffer = io.BytesIO()
    Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB").save(
        buffer, format="JPEG", quality=int(rng.integers(70, 92)))
    return buffer.getvalue()


def scan_number(digits, rng, gaps=GAPS):
    """A flat-bed scan: a white page, dark ink, the number somewhere on it."""
    digit_height = rng.uniform(50, 110)
    strip = pen_strokes(digits, rng, digit_height, rng.uniform(4, 9), gaps)
    shape = (700, max(500, strip.shape[1] + 40))
    page = 1.0 - 0.85 * _place(strip, shape, rng) + rng.normal(0, 0.01, shape)
    return synthetic.encode_pixels(np.clip(page, 0, 1) * 255, "PNG" if rng.random() < 0.5 else "JPEG")


MAKERS = {"canvas": canvas_number, "mnist": mnist_number, "photo": photo_number, "scan": scan_number}


def number_set(images, labels, count, seed=0, kinds=None, lengths=(2, 3, 4, 5), touching=True):
    """`count` (kind, text, bytes) triples of numbers of `lengths` digits, cycling through the makers.

    With `touching`, a fifth of neighbours touch or overlap a little; without, none do (some nearly touch).
    """
    gaps = GAPS if touching else APART
    rng = np.random.default_rng(seed)
    kinds = list(kinds or MAKERS)
    made = []
    for index in range(count):
        chosen = rng.choice(len(labels), size=int(rng.choice(lengths)), replace=False)
        kind = kinds[index % len(kinds)]
        text = "".join(str(int(labels[i])) for i in chosen)
        made.append((kind, text, MAKERS[kind]([images[i] for i in chosen], rng, gaps)))
    return made


def _crop(values):
    """The patch cropped to its ink."""
    rows, cols = np.flatnonzero(values.max(axis=1) > 0.05), np.flatnonzero(values.max(axis=0) > 0.05)
    return values[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _resize(values, scale):
    """Resize a float array by `scale`."""
    size = (max(1, round(values.shape[1] * scale)), max(1, round(values.shape[0] * scale)))
    return np.clip(np.asarray(Image.fromarray(values.astype(np.float32)).resize(size, Image.Resampling.BILINEAR)), 0, 1)


def _place(strip, shape, rng):
    """Put the strip somewhere inside a zero image of `shape`, shrinking it first if it does not fit."""
    limit = min((shape[0] - 8) / strip.shape[0], (shape[1] - 8) / strip.shape[1], 1.0)
    if limit < 1.0:
        strip = _resize(strip, limit)
    canvas = np.zeros(shape, dtype=np.float32)
    top = int(rng.integers(4, shape[0] - strip.shape[0] - 3))
    left = int(rng.integers(4, shape[1] - strip.shape[1] - 3))
    canvas[top : top + strip.shape[0], left : left + strip.shape[1]] = strip
    return canvas

