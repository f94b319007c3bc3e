"""Realistic uploads made from MNIST digits, for the tests and the accuracy benchmark.

Each maker takes a 28x28 uint8 MNIST digit and a numpy Generator and returns encoded image bytes the way
real users send them: canvas drawings as the Angular client makes them (400x400, black, white 15 px
round strokes, any place and size), phone photos of ink on paper (tinted, unevenly lit, noisy, JPEG,
sometimes ruled, sometimes EXIF-rotated), scans, transparent PNGs, tiny images and plain 28x28 PNGs.
"""

import io

import numpy as np
from PIL import Image
from scipy import ndimage


def stroke_mask(digit, height, pen_width):
    """Redraw an MNIST digit `height` pixels tall as strokes `pen_width` wide with round caps.

    The digit's centre line (its skeleton) is traced like a pen would, then drawn over with a disk.
    """
    from skimage import morphology  # Test and benchmark tooling only; the service does not need it.

    scale = height / 20.0  # MNIST digits fill a 20-pixel box.
    side = max(8, round(28 * scale))
    large = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BILINEAR)) > 100
    ridge = morphology.skeletonize(large)
    radius = max(0.5, pen_width / 2.0)
    reach = int(np.ceil(radius))
    yy, xx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    disk = xx * xx + yy * yy <= radius * radius
    strokes = ndimage.binary_dilation(ridge, structure=disk)
    return _crop_to_ink(ndimage.gaussian_filter(strokes.astype(np.float32), 0.6))


def canvas_drawing(digit, rng):
    """The Angular client: 400x400 PNG, black background, white 15 px strokes, anywhere, any size."""
    strokes = stroke_mask(digit, height=rng.uniform(70, 330), pen_width=15)
    canvas = _place_randomly(strokes, (400, 400), rng)
    return encode_pixels(np.clip(canvas, 0, 1) * 255, "PNG")


def paper_photo(digit, rng):
    """A phone photo of pen on paper: tinted paper, uneven light, noise, blur, JPEG, maybe ruled or rotated."""
    width, height = [(640, 480), (1024, 768), (1600, 1200)][int(rng.integers(3))]
    if rng.random() < 0.5:
        width, height = height, width
    digit_height = rng.uniform(0.15, 0.7) * min(width, height)
    strokes = stroke_mask(digit, height=digit_height, pen_width=digit_height * rng.uniform(0.05, 0.11))
    ink_mask = _place_randomly(strokes, (height, width), rng)
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    paper = rng.uniform(0.7, 0.95) + rng.uniform(-0.15, 0.15) * (xx - 0.5) + rng.uniform(-0.15, 0.15) * (yy - 0.5)
    paper -= rng.uniform(0, 0.12) * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2) * 4  # Vignetting.
    tint = np.array([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.85, 1.0)])
    ink_colour = np.array([0.1, 0.12, 0.45]) if rng.random() < 0.4 else np.array([0.12, 0.12, 0.12])
    rgb = paper[..., None] * tint
    if rng.random() < 0.3:  # Ruled paper: faint blue lines across the page.
        spacing = int(rng.uniform(0.12, 0.2) * height)
        for row in range(int(rng.integers(0, spacing)), height, spacing):
            rgb[row : row + 2] = rgb[row : row + 2] * 0.85 + np.array([0.55, 0.65, 0.9]) * 0.15
    darkness = rng.uniform(0.7, 1.0) * ink_mask[..., None]
    rgb = rgb * (1 - darkness) + ink_colour * darkness
    rgb = ndimage.gaussian_filter(rgb, sigma=(rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.2), 0))
    rgb += rng.normal(0, rng.uniform(0.005, 0.03), rgb.shape)
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
    return _encode_jpeg_maybe_rotated(image, rng, quality=int(rng.integers(60, 92)))


def scan(digit, rng):
    """A flat-bed scan: white page, dark ink, a small digit somewhere on a large grayscale image."""
    strokes = stroke_mask(digit, height=rng.uniform(60, 160), pen_width=rng.uniform(4, 9))
    page = 1.0 - 0.85 * _place_randomly(strokes, (700, 500), rng)
    page += rng.normal(0, 0.01, page.shape)
    return encode_pixels(np.clip(page, 0, 1) * 255, "PNG" if rng.random() < 0.5 else "JPEG")


def transparent_png(digit, rng):
    """Dark strokes on a fully transparent background (RGB black everywhere, alpha carrying the ink)."""
    side = int(rng.integers(100, 300))
    strokes = stroke_mask(digit, height=side * rng.uniform(0.4, 0.8), pen_width=side * rng.uniform(0.04, 0.08))
    alpha = _place_randomly(strokes, (side, side), rng)
    rgba = np.zeros((side, side, 4), dtype=np.uint8)
    rgba[..., 3] = np.clip(alpha * 255, 0, 255).astype(np.uint8)
    return encode_pixels(rgba, "PNG")


def small_image(digit, rng):
    """A tiny image (14 to 40 px), dark on light or light on dark."""
    side = int(rng.integers(14, 41))
    image = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)
    if rng.random() < 0.5:
        image = 255 - image
    return encode_pixels(image, "PNG")


def mnist_png(digit, rng):
    """The MNIST digit itself as a 28x28 grayscale PNG."""
    return encode_pixels(digit, "PNG")


MAKERS = {
    "canvas": canvas_drawing,
    "photo": paper_photo,
    "scan": scan,
    "transparent": transparent_png,
    "small": small_image,
    "mnist28": mnist_png,
}


def _crop_to_ink(values):
    """The bounding box of the non-zero pixels."""
    rows = np.flatnonzero(values.max(axis=1) > 0.01)
    cols = np.flatnonzero(values.max(axis=0) > 0.01)
    return values[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _place_randomly(patch, shape, rng):
    """Put patch somewhere inside a zero image of `shape` (shrinking it first if it does not fit)."""
    limit = min((shape[0] - 4) / patch.shape[0], (shape[1] - 4) / patch.shape[1], 1.0)
    if limit < 1.0:
        size = (max(1, int(patch.shape[1] * limit)), max(1, int(patch.shape[0] * limit)))
        patch = np.asarray(Image.fromarray(patch.astype(np.float32)).resize(size, Image.Resampling.BILINEAR))
    canvas = np.zeros(shape, dtype=np.float32)
    top = int(rng.integers(2, shape[0] - patch.shape[0] - 1))
    left = int(rng.integers(2, shape[1] - patch.shape[1] - 1))
    canvas[top : top + patch.shape[0], left : left + patch.shape[1]] = patch
    return canvas


def encode_pixels(pixels, image_format):
    """Encode a uint8-ranged array as PNG or JPEG bytes."""
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **({"quality": 90} if image_format == "JPEG" else {}))
    return buffer.getvalue()


def _encode_jpeg_maybe_rotated(image, rng, quality):
    """Save as JPEG; in a third of cases store the pixels rotated and an EXIF tag that rotates them back."""
    exif = Image.Exif()
    if rng.random() < 0.33:
        # EXIF orientation 6 means "rotate 90 degrees clockwise to view"; so store it turned the other way.
        orientation, stored = {6: (6, Image.Transpose.ROTATE_90), 8: (8, Image.Transpose.ROTATE_270),
                               3: (3, Image.Transpose.ROTATE_180)}[int(rng.choice([3, 6, 8]))]
        image = image.transpose(stored)
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue()


def realistic_set(images, labels, count, seed=0, kinds=None):
    """`count` (kind, label, bytes) triples cycling through the makers, from MNIST digits."""
    rng = np.random.default_rng(seed)
    kinds = list(kinds or MAKERS)
    chosen = rng.choice(len(labels), size=count, replace=False)
    return [(kinds[i % len(kinds)], int(labels[index]), MAKERS[kinds[i % len(kinds)]](images[index], rng))
            for i, index in enumerate(chosen)]
