"""Make any digit image look the way MNIST's digits were made, so the model sees what it was trained on.

MNIST's recipe: white ink on black, cropped to the ink, fitted into a 20x20 box keeping the aspect ratio
with anti-aliasing, then placed in 28x28 with its centre of mass at the centre. Training and serving both
use the constants below. An image already made so (`is_mnist_digit`: what the model was trained and tested
on) is read as it is; the recipe would leave it nearly unchanged (tested), but only nearly.
"""

import functools

import numpy as np
from PIL import Image

from digits.imaging import decoding, exceptions, ndimage_routines

IMAGE_SIDE = 28  # The model's input is 28x28 ...
DIGIT_BOX = 20  # ... the digit fitted into a 20x20 box ...
CENTER = 14.0  # ... centre of mass at pixel (14, 14): measured on MNIST's training set, 13.99 and 14.00.
PIXEL_MAX = 255.0  # MNIST's uint8 pixels divided by this give the model's 0..1 (ink 1, background 0).

INK_THRESHOLD = 0.35  # After contrast stretching, ink is near 1; a pixel above this belongs to a stroke.
MIN_CONTRAST = 0.08  # Weaker than this above the background is paper texture or noise, not ink.
BACKGROUND_SAMPLES = 1024  # Pixels sampled on a grid to fit the background; plenty for a quadratic.
NOISE_SIGMAS = 3.0  # Background noise up to this many standard deviations is set to black.
SPECK_FRACTION = 0.02  # Blobs under 2% of the digit's largest stroke are specks.
NEAR_FRACTION = 0.6  # Parts of a digit lie within 60% of its size from the rest of it.
EDGE_MARGIN = 0.03  # The border ring (3% of the side) that says what the background looks like.
GROW_PIXELS = 2  # The digit's mask is grown by 2 pixels to take in the strokes' soft edges.
# Stroke width in 20x20-box pixels: MNIST's run from 1.7 (5th percentile) to 3.9 (95th), median 2.5.
# Outside MIN..MAX an upload's strokes are redrawn to a typical width, at SUPERSAMPLE times the box's size.
MIN_STROKE, MAX_STROKE = 1.4, 4.8
TARGET_THIN_STROKE, TARGET_THICK_STROKE = 2.4, 3.8
SUPERSAMPLE = 4
FEW_STROKES = 3  # label_strokes measures this many strokes one by one; more, all at once.
# A digit enlarged by this much or more (a crop of 16 pixels or less: a small scan) is enlarged smoothly (bicubic)
# at SUPERSAMPLE times the box, then anti-aliased down, instead of stretching its pixels bilinearly to the box.
SMOOTH_ENLARGE = 1.2
# An image in MNIST's own format (is_mnist_digit): every one of MNIST's 70,000 digits is, by these bounds.
MNIST_BOX_SIDES = (19, 20)  # The longer side of its ink's box: DIGIT_BOX, or 19 where the fit left a blank edge.
MNIST_CENTER_REACH = 1.0  # Its centre of mass at most this far from CENTER on each axis (MNIST's: 0.52).
MNIST_PEAK = 0.95  # Its brightest pixel full ink (MNIST's: 254 or 255).
_SIDE_INDEX = np.arange(IMAGE_SIDE, dtype=np.float64)


def scale_pixels(images):
    """MNIST uint8 pixels to the model's float32 0..1 scale."""
    return np.asarray(images, dtype=np.float32) / PIXEL_MAX


def prepare_upload(data, max_pixels=decoding.DEFAULT_MAX_PIXELS):
    """Image bytes in, the 28x28 float32 digit the model reads out (or one of our exceptions)."""
    return normalize_digit(decoding.decode_grayscale(data, max_pixels=max_pixels))


def normalize_digit(gray):
    """Any grayscale image (H, W) in 0..1 to a 28x28 MNIST-style digit, ink 1 on background 0: a digit already
    in MNIST's format as it is, any other through MNIST's recipe."""
    gray = np.asarray(gray, dtype=np.float32)
    return gray.copy() if is_mnist_digit(gray) else apply_recipe(gray)


def is_mnist_digit(gray):
    """Whether a grayscale image (H, W) in 0..1 is already a digit as MNIST made them: 28x28, ink on exact black,
    the ink's box 19 or 20 pixels on its longer side, its centre of mass within a pixel of the centre, its
    brightest pixel full ink.

    The model was trained and tested on such images as they are. The recipe would crop, stretch, resample and
    centre one again, and change its pixels a little (and so the model's answer, now and then); read as it is,
    an MNIST digit gets the answer the trained model gives it.
    """
    if gray.shape != (IMAGE_SIDE, IMAGE_SIDE):
        return False
    row_ink, col_ink = gray.sum(axis=1, dtype=np.float64), gray.sum(axis=0, dtype=np.float64)
    rows, cols = np.flatnonzero(row_ink), np.flatnonzero(col_ink)
    if rows.size == 0 or max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 not in MNIST_BOX_SIDES:
        return False
    total = float(row_ink.sum())
    return (abs(float(row_ink @ _SIDE_INDEX) / total - CENTER) <= MNIST_CENTER_REACH
            and abs(float(col_ink @ _SIDE_INDEX) / total - CENTER) <= MNIST_CENTER_REACH
            and float(gray.max()) >= MNIST_PEAK and float(gray.min()) >= 0.0)


def apply_recipe(gray):
    """MNIST's recipe for a grayscale image (H, W) in 0..1, float32: the ink found, cropped, fitted into the
    20x20 box and centred by its mass in 28x28."""
    digit = _normalize_clean_canvas(gray)
    if digit is not None:
        return digit
    ink = flatten_background(ink_positive(gray))
    mask = digit_mask(ink)
    return fit_and_center(ink, mask)


def ink_positive(gray):
    """Return the image with ink bright: the background is what the border shows, the ink the far tail."""
    ring = max(1, round(EDGE_MARGIN * min(gray.shape)))
    border = np.concatenate(
        [gray[:ring].ravel(), gray[-ring:].ravel(), gray[:, :ring].ravel(), gray[:, -ring:].ravel()]
    )
    background = float(_median(border))
    smooth = _block_mean(gray)  # One noisy pixel must not decide the polarity.
    if background - float(smooth.min()) > float(smooth.max()) - background:
        return 1.0 - gray
    return gray


def flatten_background(ink):
    """Subtract a smooth background (uneven lighting, tinted paper), drop noise, stretch ink to 1."""
    background, noise = _fit_background(ink)
    residual = ink - background
    residual -= NOISE_SIGMAS * noise  # In place here and below: the same operations, no image-sized copies.
    peak = float(_block_mean(residual).max())  # Averaged: a single hot pixel is not ink.
    if peak < MIN_CONTRAST:
        raise exceptions.NoDigitFound("No digit found: the image is blank or has too little contrast.")
    strong = residual[residual >= 0.5 * peak]
    residual /= float(_median(strong))
    return np.clip(residual, 0.0, 1.0, out=residual)


def _fit_background(ink):
    """Fit a quadratic surface to the background pixels; return it and the noise around it."""
    height, width = ink.shape
    samples, step = _background_samples(ink)
    rows, cols = np.mgrid[0 : height : step, 0 : width : step]
    y = rows.ravel() / max(1, height - 1) * 2 - 1
    x = cols.ravel() / max(1, width - 1) * 2 - 1
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    values = samples.ravel().astype(np.float64)
    flat = _flat_background(values)
    if flat is not None:  # A flat background (a canvas, a clean scan): nothing to fit.
        return flat, 0.0
    chosen = values <= _median(values)  # Ink is a minority of pixels; start from the darker half.
    noise = 0.0
    for _ in range(3):
        coefficients = np.linalg.lstsq(design[chosen], values[chosen], rcond=None)[0]
        residual = values - design @ coefficients
        noise = 1.4826 * float(_median(np.abs(residual[chosen])))
        chosen = residual <= max(3.0 * noise, 1e-3)
    yy = (np.arange(height, dtype=np.float32) / max(1, height - 1) * 2 - 1)[:, None]
    xx = (np.arange(width, dtype=np.float32) / max(1, width - 1) * 2 - 1)[None, :]
    c = coefficients.astype(np.float32)
    # Summed term by term, in place: no image-sized temporary per term.
    surface = c[0] + c[1] * xx + c[2] * yy
    surface += c[3] * xx * xx
    surface += c[4] * xx * yy
    surface += c[5] * yy * yy
    return surface, noise


def _background_samples(ink):
    """The pixels on the grid the background is fitted to, and the grid's step."""
    height, width = ink.shape
    step = max(1, int(np.sqrt(height * width / BACKGROUND_SAMPLES)))
    return ink[::step, ::step], step


def _flat_background(values):
    """The background's value if the darker half of the samples is all one value, else None."""
    chosen = values[values <= _median(values)]  # Ink is a minority of pixels; start from the darker half.
    return np.float32(chosen[0]) if chosen.min() == chosen.max() else None


def _is_flat_at(samples, value):
    """Whether _flat_background(samples as float64) is `value`: the darker half of the samples is all `value`.

    It is exactly when `value` is their minimum and at least half of them, rounded up, hold it. For an odd count
    the median is then the minimum itself; for an even count the lower middle one is, and the upper middle one
    either is too or lies above the median, halfway between them. Counting needs no sort.
    """
    return samples.min() == value and np.count_nonzero(samples == value) >= (samples.size + 1) // 2


def _normalize_clean_canvas(gray):
    """normalize_digit's result, computed on a window around the ink, for a clean canvas; None for other images."""
    window = clean_canvas_ink(gray)
    if window is None:
        return None
    ink, _ = window
    # No stroke reaches the window's edge or the image's, so none is an edge line in either, and the grown
    # mask stays inside the window: digit_mask and fit_and_center give what they give on the whole image.
    return fit_and_center(ink, digit_mask(ink))


def clean_canvas_ink(gray):
    """For a clean canvas, the ink (as flatten_background(ink_positive(gray))) on a window around it, and the
    window's (top, left) in gray; None for other images.

    A clean canvas (a browser drawing, a clean scan) is one exact background value with the ink well inside
    its border. Every step of the general path then depends on the pixels outside the ink's box only through
    that one value, so the steps run on the window with that value standing in for the rest: the same
    ink, bit for bit, zero outside the window (tests/test_fast_paths.py), at a fraction of the work.
    """
    height, width = gray.shape
    background = gray[0, 0]
    ink_rows = np.flatnonzero((gray != background).any(axis=1))
    if ink_rows.size == 0:
        return None
    ink_cols = np.flatnonzero((gray[ink_rows[0] : ink_rows[-1] + 1] != background).any(axis=0))
    ring = max(1, round(EDGE_MARGIN * min(gray.shape)))  # As ink_positive: the border must be all background.
    if (ink_rows[0] < ring or ink_cols[0] < ring or ink_rows[-1] >= height - ring
            or ink_cols[-1] >= width - ring):
        return None
    # The window: the ink's box grown past GROW_PIXELS, on even rows and columns so its 2x2 blocks (the
    # robust statistics) are the full image's blocks.
    margin = GROW_PIXELS + 2
    top, left = max(0, ink_rows[0] - margin) & ~1, max(0, ink_cols[0] - margin) & ~1
    bottom, right = ink_rows[-1] + 1 + margin, ink_cols[-1] + 1 + margin
    bottom, right = min(height, bottom + (bottom & 1)), min(width, right + (right & 1))
    if top == 0 and left == 0 and bottom >= height & ~1 and right >= width & ~1:
        return None  # No 2x2 block of pure background outside the window: nothing to gain.
    window = gray[top:bottom, left:right]

    # ink_positive: the border's median is the background; the outside blocks all average to one value (the
    # same float32 sums _block_mean makes).
    flat_block = float((background + background + background + background) / np.float32(4))
    smooth = _block_mean(window)
    darkest, brightest = min(flat_block, float(smooth.min())), max(flat_block, float(smooth.max()))
    invert = float(background) - darkest > brightest - float(background)
    ink = 1.0 - window if invert else window
    outside = (np.float32(1.0) - background) if invert else background

    # flatten_background: the fit must find the same flat background, equal to the outside's value.
    samples, _ = _background_samples(gray)
    if not _is_flat_at(1.0 - samples if invert else samples, outside):
        return None
    residual = ink - outside  # Zero outside the window.
    peak = max(0.0, float(_block_mean(residual).max()))
    if peak < MIN_CONTRAST:
        raise exceptions.NoDigitFound("No digit found: the image is blank or has too little contrast.")
    strong = residual[residual >= 0.5 * peak]
    residual /= float(_median(strong))
    return np.clip(residual, 0.0, 1.0, out=residual), (int(top), int(left))


def label_strokes(ink):
    """The strokes: (labels, count, areas, boxes) of the 8-connected blobs of strong pixels (ink > INK_THRESHOLD);
    areas and boxes (find_objects slices) are indexed by label - 1."""
    labels, count = ndimage_routines.label(ink > INK_THRESHOLD)
    if count == 0:
        raise exceptions.NoDigitFound("No digit found in the image.")
    if count > FEW_STROKES:
        return labels, count, np.bincount(labels.ravel())[1:], ndimage_routines.find_objects(labels, count)
    # A digit is mostly one to three strokes: a pass per stroke costs less than SciPy's and NumPy's general ones.
    areas, boxes = np.empty(count, np.intp), []
    for label in range(1, count + 1):
        stroke = labels == label
        rows, cols = np.flatnonzero(stroke.any(axis=1)), np.flatnonzero(stroke.any(axis=0))
        areas[label - 1] = np.count_nonzero(stroke[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
        boxes.append((slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)))
    return labels, count, areas, boxes


def digit_mask(ink, strokes=None):
    """The strokes of the digit: strong pixels, minus specks, far-away blobs and lines along the edges.

    `strokes` is label_strokes(ink), when the caller has it already.
    """
    labels, count, areas, boxes = strokes or label_strokes(ink)
    candidates = [i for i in range(count) if not _is_edge_line(boxes[i], areas[i], ink.shape)]
    candidates = sorted(candidates or range(count), key=lambda i: -areas[i])
    largest = candidates[0]
    kept, box = {largest}, _box(boxes[largest])
    grew = True
    while grew:
        grew = False
        for i in candidates:
            if i in kept or areas[i] < SPECK_FRACTION * areas[largest]:
                continue
            if _gap(box, _box(boxes[i])) <= NEAR_FRACTION * max(box[2] - box[0], box[3] - box[1]):
                kept.add(i)
                box = _union(box, _box(boxes[i]))
                grew = True
    if len(kept) == 1:  # Most digits: one stroke, or one kept.
        return labels == largest + 1
    keep = np.zeros(count + 1, dtype=bool)  # A lookup table by label: one pass over the image.
    keep[np.fromiter(kept, dtype=np.int64) + 1] = True
    return keep[labels]


def _is_edge_line(box, area, shape):
    """A ruled line or frame touching the image's edge, not a stroke of the digit."""
    rows, cols = box
    height, width = rows.stop - rows.start, cols.stop - cols.start
    touches = rows.start == 0 or cols.start == 0 or rows.stop == shape[0] or cols.stop == shape[1]
    if not touches:
        return False
    horizontal = width >= 0.5 * shape[1] and width >= 6 * height
    vertical = height >= 0.95 * shape[0] and height >= 10 * width
    frame = height >= 0.8 * shape[0] and width >= 0.8 * shape[1] and area < 0.2 * height * width
    return horizontal or vertical or frame


def _box(slices):
    """(top, left, bottom, right) of a find_objects slice pair."""
    return slices[0].start, slices[1].start, slices[0].stop, slices[1].stop


def _union(a, b):
    """The bounding box around two boxes."""
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _gap(a, b):
    """How far apart two boxes are (0 when they overlap)."""
    return max(0, max(a[0], b[0]) - min(a[2], b[2]), max(a[1], b[1]) - min(a[3], b[3]))


def fit_and_center(ink, mask):
    """Crop to the digit, fit it into the 20x20 box keeping its aspect ratio, centre its mass in 28x28."""
    # Grow the mask a little so the soft, anti-aliased edges of the strokes come along. Only the window
    # around the strokes that the growth can reach is worked on: the same pixels, a fraction of the work.
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    window = (slice(max(0, rows[0] - GROW_PIXELS), rows[-1] + GROW_PIXELS + 1),
              slice(max(0, cols[0] - GROW_PIXELS), cols[-1] + GROW_PIXELS + 1))
    ink, mask = ink[window], mask[window]  # From here on, in the window's coordinates.
    digit = ink * grow(mask, GROW_PIXELS)
    rows = np.flatnonzero(digit.any(axis=1))
    cols = np.flatnonzero(digit.any(axis=0))
    crop = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = DIGIT_BOX / max(crop.shape)
    # Strokes are measured at a fixed resolution, whatever the upload's: SUPERSAMPLE times the box.
    small = scale >= SMOOTH_ENLARGE
    fine = _resize(crop, scale * SUPERSAMPLE, Image.Resampling.BICUBIC if small else Image.Resampling.BILINEAR)
    stroke = stroke_width(fine >= 0.5 * fine.max()) / SUPERSAMPLE
    if MIN_STROKE <= stroke <= MAX_STROKE:
        fitted = _resize(fine, 1 / SUPERSAMPLE) if small else _resize(crop, scale)
    else:
        fitted = _resize(_restroke(fine, stroke * SUPERSAMPLE), 1 / SUPERSAMPLE)
    if fitted.sum() <= 0:
        raise exceptions.NoDigitFound("No digit found: the ink vanished when scaled to 20x20.")
    center_row, center_col = _center_of_mass(fitted)
    return _place(fitted, round(CENTER - center_row), round(CENTER - center_col))


def _center_of_mass(image):
    """ndimage.center_of_mass(image), the same sums in the same order (so the same floats), without its set-up."""
    total = image.sum()
    rows = np.arange(image.shape[0], dtype=np.float64)[:, None]
    cols = np.arange(image.shape[1], dtype=np.float64)[None, :]
    return (image * rows).sum() / total, (image * cols).sum() / total


def stroke_width(mask):
    """Mean stroke width in pixels: a stroke's area is its length times its width, its outline twice its length."""
    outline = np.count_nonzero(mask & ~_erode(mask))
    return 2.0 * np.count_nonzero(mask) / max(outline, 1)


def _restroke(image, width):
    """Thicken strokes thinner than MNIST's (a fine pen, shrunk) or thin blobby ones (a fat pen, drawn small)."""
    target = (TARGET_THIN_STROKE if width < TARGET_THIN_STROKE * SUPERSAMPLE else TARGET_THICK_STROKE) * SUPERSAMPLE
    radius = abs(target - width) / 2
    disk = _disk(radius)
    if width < target:
        image = _disk_filter(image, disk, np.maximum)
        # Shrinking a fine stroke left it faint gray; bring its core back to full ink.
        core = image[image >= 0.5 * image.max()]
        return np.clip(image / float(_median(core)), 0.0, 1.0) if core.size else image
    return _disk_filter(image, disk, np.minimum)


# The morphology below is SciPy's (binary_dilation with `iterations`, binary_erosion, grey_dilation and
# grey_erosion with a disk footprint), computed with shifted views of a padded array: the same pixels
# (tests/test_preparation.py), without SciPy's per-call set-up, which on these small images costs more than
# the work itself.

def grow(mask, pixels):
    """ndimage.binary_dilation(mask, iterations=pixels): `pixels` passes of the 4-neighbour cross, which
    together reach every pixel within `pixels` steps along rows and columns (a diamond).

    The diamond's row dy is a run of 2 * (pixels - |dy|) + 1 columns: the runs are widened a column each side at
    a time, then taken at each row's offset (4 * pixels whole-array operations, not one per diamond pixel)."""
    height, width = mask.shape
    padded = np.zeros((height + 2 * pixels, width + 2 * pixels), dtype=bool)
    padded[pixels : pixels + height, pixels : pixels + width] = mask
    runs = [padded[:, pixels : pixels + width]]  # runs[w]: set if any of columns x - w to x + w is, per padded row.
    for half in range(1, pixels + 1):
        run = runs[-1] | padded[:, pixels - half : pixels - half + width]
        runs.append(np.bitwise_or(run, padded[:, pixels + half : pixels + half + width], out=run))
    grown = runs[pixels][pixels : pixels + height].copy()
    for dy in range(1, pixels + 1):
        run = runs[pixels - dy]
        grown |= run[pixels - dy : pixels - dy + height]
        grown |= run[pixels + dy : pixels + dy + height]
    return grown


def _erode(mask):
    """ndimage.binary_erosion(mask): a pixel stays if it and its 4 neighbours are set (outside is unset)."""
    height, width = mask.shape
    padded = np.zeros((height + 2, width + 2), dtype=bool)
    padded[1:-1, 1:-1] = mask
    return padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]


@functools.lru_cache(maxsize=256)
def _disk(radius):
    """A round footprint of the given radius (a boolean square array), made once per radius."""
    reach = int(np.ceil(radius))
    yy, xx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    disk = xx * xx + yy * yy <= radius * radius + 0.25
    disk.flags.writeable = False  # Shared between calls.
    return disk


def _disk_filter(image, disk, combine):
    """ndimage.grey_dilation (combine=np.maximum) or grey_erosion (np.minimum) with a round footprint (_disk),
    edges reflected as SciPy's default mode does.

    Each row of a disk is a run of pixels centred on its column, so the filter is the combination, over the
    disk's rows, of runs along the rows: runs widened a pixel each side at a time, then taken at each row's
    offset. The same pixels as SciPy's, in a few whole-array operations instead of one per footprint pixel.
    """
    reach = disk.shape[0] // 2
    height, width = image.shape
    if reach >= min(height, width):  # Reflection would wrap more than once: SciPy's own rules then.
        return ndimage_routines.disk_filter(image, disk, minimum=combine is np.minimum)
    padded = _reflect_pad(image, reach)
    lengths = disk.sum(axis=1)  # Row dy of the disk covers columns reach - w to reach + w, 2w + 1 pixels.
    runs = [padded[:, reach : reach + width].copy()]  # runs[w]: the combination over columns x - w to x + w.
    for half in range(1, int(lengths.max()) // 2 + 1):
        run = combine(runs[-1], padded[:, reach - half : reach - half + width])
        runs.append(combine(run, padded[:, reach + half : reach + half + width], out=run))
    result = None
    for dy, length in enumerate(lengths.tolist()):
        if not length:
            continue
        shifted = runs[length // 2][dy : dy + height]
        result = shifted.copy() if result is None else combine(result, shifted, out=result)
    return result


def _reflect_pad(image, reach):
    """The image padded by reach (less than each side) as SciPy's "reflect" mode reads past the edges: -1 reads 0,
    -2 reads 1; past the end likewise. Copied by slices: np.pad's set-up costs several times the copying."""
    height, width = image.shape
    padded = np.empty((height + 2 * reach, width + 2 * reach), image.dtype)
    padded[reach : reach + height, reach : reach + width] = image
    if reach:
        padded[reach : reach + height, :reach] = image[:, reach - 1 :: -1]
        padded[reach : reach + height, reach + width :] = image[:, width - 1 : width - reach - 1 : -1]
        padded[:reach] = padded[2 * reach - 1 : reach - 1 : -1]  # The rows above and below, corners included.
        padded[reach + height :] = padded[reach + height - 1 : height - 1 : -1]
    return padded


def _resize(image, scale, method=Image.Resampling.BILINEAR):
    """Resize by `scale` with Pillow; its filter widens when shrinking, which is the anti-aliasing MNIST used."""
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    image = np.ascontiguousarray(image, dtype=np.float32)  # Pillow's "F" mode, as fromarray would convert it.
    if size == image.shape[::-1]:
        return np.clip(image, 0.0, 1.0)  # Pillow copies an image resized to its own size.
    # frombuffer and tobytes: fromarray and asarray's copies, without their set-up.
    source = Image.frombuffer("F", image.shape[::-1], image, "raw", "F", 0, 1)
    resized = np.frombuffer(source.resize(size, method).tobytes(), dtype=np.float32).reshape(size[::-1])
    return np.clip(resized, 0.0, 1.0)


def _place(patch, top, left):
    """Paste patch into a black 28x28 image at (top, left), clipping whatever falls outside."""
    canvas = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    source_top, source_left = max(0, -top), max(0, -left)
    target_top, target_left = max(0, top), max(0, left)
    height = min(patch.shape[0] - source_top, IMAGE_SIDE - target_top)
    width = min(patch.shape[1] - source_left, IMAGE_SIDE - target_left)
    canvas[target_top : target_top + height, target_left : target_left + width] = patch[
        source_top : source_top + height, source_left : source_left + width
    ]
    return canvas


def _median(values):
    """np.median(values) of a non-empty array without NaNs: the same value, without np.median's set-up, which on
    these small arrays costs more than the partition itself."""
    values = np.ravel(values)
    middle = len(values) // 2
    if len(values) % 2:
        return np.partition(values, middle)[middle]
    below, above = np.partition(values, (middle - 1, middle))[middle - 1 : middle + 1]
    return (below + above) / 2  # As np.mean of the two: their sum in their own type, halved.


def _block_mean(gray):
    """Average 2x2 blocks (used for robust statistics); tiny images are returned as they are."""
    height, width = (gray.shape[0] // 2) * 2, (gray.shape[1] // 2) * 2
    if height == 0 or width == 0:
        return gray
    top, bottom = gray[0:height:2], gray[1:height:2]  # Strided views: no reshaped copy.
    return (top[:, 0:width:2] + top[:, 1:width:2] + bottom[:, 0:width:2] + bottom[:, 1:width:2]) / 4
