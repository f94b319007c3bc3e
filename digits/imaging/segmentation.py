"""Read a line of handwritten digits: find each digit, left to right, as the 28x28 digit the model reads.

The ink is found as for a single digit (preparation's polarity, background and speck rules). Strokes on
the digits' line are kept; they are cut into narrow vertical slices ("atoms") at the gaps between
columns of ink and, inside wide blobs, at the thinnest columns, where touching digits usually meet.
Every run of neighbouring atoms is a candidate digit. The reading chosen is the one whose digits the
classifier reads most confidently, less costs that keep one digit drawn in pieces whole: for fragments
much shorter than the line, for blobs much wider than tall, for each stroke a cut goes through, and for
joining two tall strokes that stand side by side (two digits, nearly always). A line read confidently as
one digit is one digit when it is narrow as one or no reading as several is clearly better. Each chosen
digit is prepared exactly as a single digit is, and a line read as one digit gives exactly what
`preparation.prepare_upload` gives. An image already in MNIST's format (28x28, one digit fitted and centred
as MNIST's are: `preparation.is_mnist_digit`) is that one digit, read as it is.
"""

import collections
import functools
import math

import numpy as np

from digits.imaging import canvas_png, decoding, exceptions, ndimage_routines, preparation

WIDE_ASPECT = 2.0  # Images wider than twice their height are decoded larger, so each digit keeps pixels.
MIN_LINE_PIXELS = 128  # ... at least this many rows then (up to MAX_WORKING_SIDE along the width).
MAX_WORKING_SIDE = 1024
MIN_DIGIT_PIXELS = 48  # Digits on a line shorter than this are decoded again, larger (up to MAX_WORKING_SIDE).
LINE_GAP = 1.5  # A blob joins the line if it lies within 1.5 line heights of it, sideways.
CUT_WIDTH = 0.6  # Blobs wider than 0.6 line heights may be touching digits: cut candidates are sought.
MIN_ATOM = 0.18  # Cut candidates are at least this many line heights apart and from a blob's ends.
MAX_RUN_WIDTH = 1.9  # No digit is wider than this many line heights.
MAX_RUN = 6  # ... nor made of more than this many atoms.
GAP_COST = 1.0  # Joining strokes across a clear gap ...
SIDE_BY_SIDE_COST = 2.5  # ... or two tall strokes side by side: pieces of one digit are rarely both full height.
TALL_HEIGHT = 0.7  # A stroke this much of the line's height is tall.
BAND_LIMIT = 1.25  # The line's height is its strokes' band, at most this many times its tallest stroke's.
ONE_DIGIT_CONFIDENCE = 0.5  # A line read as one digit this confidently is one digit if it is narrow ...
ONE_DIGIT_RATIO = 1.0  # ... (no wider than tall) ...
ONE_DIGIT_MARGIN = 1.0  # ... or if no reading as several digits scores this much better.
CUT_COST = 0.5  # Cutting through a stroke, per stroke cut: touching digits meet in one stroke, a 0 has two.
DROP_COST = 1.0  # Dropping a small fragment (a dot, a stray mark) that is no digit.
DROP_AREA = 0.15  # ... one with less ink than this fraction of the largest stroke.
SHORT_HEIGHT = 0.5  # A candidate shorter than half the line is a fragment (a bar, a loop, a dot) ...
SHORT_COST = 4.0  # ... and costs this much.
WIDE_RATIO = 1.15  # Wider than this (width / height) a candidate is likely two digits ...
WIDE_COST = 3.0  # ... and costs this much per unit of ratio beyond it.
DIGITS = 10  # The classifier's first ten outputs are the digits (an eleventh, if any, is "not a digit").

# A digit read: its 28x28 float32 image, its box {left, top, width, height} in the upload's pixels, whether
# it was cut from the digit before it through a stroke (touching digits; or one shape, split), and the
# classifier's probabilities for the image when choosing the reading already asked for them (else None).
Digit = collections.namedtuple("Digit", "image box cut probabilities", defaults=(False, None))


def prepare_number(data, max_pixels=decoding.DEFAULT_MAX_PIXELS, classify=None):
    """Image bytes in; the digits on its line, left to right, as Digits (or one of our exceptions).

    `classify` maps prepared digits (N, 28, 28) to probabilities (N, 10 or 11; column 10 is "not a
    digit"); it chooses between readings. Without it, the shapes alone decide.
    """
    height, width = image_size(data, max_pixels)
    working_side = decoding.WORKING_SIDE
    if width > WIDE_ASPECT * height:
        working_side = min(MAX_WORKING_SIDE, max(working_side, round(MIN_LINE_PIXELS * width / height)))
    gray = decoding.decode_grayscale(data, max_pixels=max_pixels, working_side=working_side)
    if preparation.is_mnist_digit(gray):
        digits = [_as_is(gray, classify)]
    else:
        line = _find_line(gray)
        # Several digits small in a large image (a number in a photo): decode again with more pixels per digit.
        larger = min(MAX_WORKING_SIDE, round(working_side * MIN_DIGIT_PIXELS / line.height))
        if line.height < MIN_DIGIT_PIXELS and max(gray.shape) < max(height, width) and larger > working_side \
                and len(line.atoms) > 1:
            gray = decoding.decode_grayscale(data, max_pixels=max_pixels, working_side=larger)
            line = _find_line(gray)
        digits = _read(line, classify)
    scale_y, scale_x = height / gray.shape[0], width / gray.shape[1]
    return [Digit(image, _scale_box(box, scale_x, scale_y), cut, probabilities)
            for image, box, cut, probabilities in digits]


def image_size(data, max_pixels=decoding.DEFAULT_MAX_PIXELS):
    """(height, width) of the upload as it is viewed (EXIF rotation applied), from its header."""
    size = canvas_png.png_size(data)
    if size is not None and b"eXIf" not in data:  # Most uploads: a PNG's header read directly, no Pillow set-up.
        return size[1], size[0]
    try:
        image = decoding.open_header(data)
        width, height = image.size
        # A PNG keeps its EXIF (rare) after the pixels, where getexif() would decode them all to find it.
        has_exif = image.format != "PNG" or b"eXIf" in data
        if has_exif and image.getexif().get(0x0112) in {5, 6, 7, 8}:  # Rotated a quarter turn to view.
            width, height = height, width
        return height, width
    except Exception:
        # Let the decoder report what is wrong with the file, with its own messages.
        decoding.decode_grayscale(data, max_pixels=max_pixels)
        raise exceptions.CorruptImage("The image header could not be read.") from None


def _as_is(gray, classify):
    """A digit in MNIST's format (preparation.is_mnist_digit) read as it is, as _read's tuple: one digit, as
    MNIST's images are; its box that of its strong pixels, as a stroke's."""
    probabilities = None if classify is None else np.asarray(classify(gray[None]), np.float64)[0]
    return gray, _mask_box(gray > preparation.INK_THRESHOLD), False, probabilities


def _find_line(gray):
    """The ink and its strokes on the digits' line (the atoms they are cut into are found when asked for).

    A clean canvas is worked on the window around its ink (preparation.clean_canvas_ink): the same strokes,
    atoms and digits, less work; `offset` is the window's (top, left) in gray.
    """
    window = preparation.clean_canvas_ink(gray)
    if window is None:
        ink, offset = preparation.flatten_background(preparation.ink_positive(gray)), (0, 0)
    else:
        ink, offset = window
    strokes = preparation.label_strokes(ink)
    components = _line_components(strokes, ink.shape)
    # The line's height: its tallest stroke's, or more where a digit is drawn in pieces one above the other.
    tallest = max(c.bottom - c.top for c in components.values())
    band = max(c.bottom for c in components.values()) - min(c.top for c in components.values())
    height = min(band, round(BAND_LIMIT * tallest))
    return Line(ink, strokes, components, height, offset)


def _read(line, classify):
    """The best reading of a line: its digits as (28x28, box, cut, probabilities) tuples, left to right."""
    image = probabilities = None
    if _is_narrow(line):
        # Narrow as one digit and read confidently as one: one digit, whatever pieces it was drawn in.
        image, box = _single(line.ink, line.strokes)
        probabilities = None if classify is None else np.asarray(classify(image[None]), np.float64)[0]
        if probabilities is None or probabilities[:DIGITS].max() >= ONE_DIGIT_CONFIDENCE:
            return [(image, _shift_box(box, line.offset), False, probabilities)]
    if len(line.atoms) > 1:
        digits = _read_several(line, classify)
        if digits is not None:
            return digits
    # One digit: exactly the single-digit preparation, whatever the line search kept or dropped.
    if image is None:
        image, box = _single(line.ink, line.strokes)
    return [(image, _shift_box(box, line.offset), False, probabilities)]


def _read_several(line, classify):
    """The line's digits when the best reading has several, else None (then it is one digit)."""
    candidates = _candidates(line.ink, line.strokes[0], line.components, line.owner, line.atoms, line.height)
    largest = max(c.area for c in line.components.values())
    confidence, probabilities = _confidence(candidates, classify)
    scores = _scores(candidates, line.bounds, confidence, line.height, largest)
    best, runs = _best_partition(len(line.atoms), scores)
    chosen = [run for run in runs if scores[run][1]]
    everything = (0, len(line.atoms))
    # Read confidently as one digit, and narrow as one or not clearly better read as several: one digit,
    # whatever pieces it was drawn in (fragments blown up to 20x20 can look like digits too).
    if candidates.get(everything) is not None and confidence[everything] >= ONE_DIGIT_CONFIDENCE \
            and best - scores[everything][0] < ONE_DIGIT_MARGIN:
        return None
    if len(chosen) <= 1:
        return None
    return [(candidates[run].image, _shift_box(candidates[run].box, line.offset),
             run[0] > 0 and line.bounds[run[0] - 1].kind == "cut", probabilities.get(run))
            for run in chosen]


class Line:
    """The ink (of the image, or of a window of it at `offset`, its (top, left)), its strokes
    (preparation.label_strokes, whose labels number the components), the components on the digits' line,
    the line's height, and, computed when first asked for, the atoms it is cut into (see _atoms)."""

    def __init__(self, ink, strokes, components, height, offset):
        self.ink, self.strokes, self.components, self.height, self.offset = ink, strokes, components, height, offset

    @functools.cached_property
    def _cut(self):
        return _atoms(self.strokes[0], self.components, self.height)

    @property
    def atoms(self):
        return self._cut[0]

    @property
    def owner(self):
        return self._cut[1]

    @property
    def bounds(self):
        return self._cut[2]


Component = collections.namedtuple("Component", "top left bottom right area")
Candidate = collections.namedtuple("Candidate", "image box height width area")
# Between two atoms: "gap" (no ink), "overlap" (two strokes side by side) or "cut" (through `crossed` strokes);
# `tall` when the strokes on both sides are tall (side by side, they are two digits nearly always).
Bound = collections.namedtuple("Bound", "kind crossed tall")


def _single(ink, strokes=None):
    """The single-digit preparation of the ink, and its box: what preparation.normalize_digit gives."""
    mask = preparation.digit_mask(ink, strokes)
    return preparation.fit_and_center(ink, mask), _mask_box(mask)


def _is_narrow(line):
    """Whether the line's strokes together are no wider than tall (ONE_DIGIT_RATIO), the shape of one digit,
    and not two tall strokes standing apart side by side: a narrow 11, 71 or 91 is two digits, nearly always
    (the search weighs it, as it weighs any line)."""
    components = line.components.values()
    width = max(c.right for c in components) - min(c.left for c in components)
    height = max(c.bottom for c in components) - min(c.top for c in components)
    tall = [c for c in components if _is_tall(c, line.height)]
    return width <= ONE_DIGIT_RATIO * height and not any(b.left >= a.right for a in tall for b in tall)


def _line_components(strokes, shape):
    """Of the labelled strokes, those on the line of the largest one (no specks, edge lines or far blobs)."""
    labels, _, areas, slices = strokes
    every = {
        i + 1: Component(s[0].start, s[1].start, s[0].stop, s[1].stop, int(areas[i]))
        for i, s in enumerate(slices)
        if not preparation._is_edge_line(s, areas[i], shape)
    }
    if not every:  # Only lines and frames: let the single-digit rules decide, as they always have.
        every = {i + 1: Component(s[0].start, s[1].start, s[0].stop, s[1].stop, int(areas[i]))
                 for i, s in enumerate(slices)}
    largest = max(every, key=lambda i: every[i].area)
    every = {i: c for i, c in every.items() if c.area >= preparation.SPECK_FRACTION * every[largest].area}
    kept = {largest: every[largest]}
    top, left, bottom, right = every[largest][:4]
    grew = True
    while grew:
        grew = False
        for i, c in every.items():
            if i in kept:
                continue
            height = bottom - top
            vertical_gap = max(0, c.top - bottom, top - c.bottom)
            horizontal_gap = max(0, c.left - right, left - c.right)
            if vertical_gap <= preparation.NEAR_FRACTION * height and horizontal_gap <= LINE_GAP * height:
                kept[i] = c
                top, left = min(top, c.top), min(left, c.left)
                bottom, right = max(bottom, c.bottom), max(right, c.right)
                grew = True
    return kept


def _atoms(labels, components, line_height):
    """Column ranges [start, stop) that tile the line, which atom owns each whole component, and the bounds.

    Columns with no ink separate atoms; wide blobs are cut further at their thinnest columns. A component
    that is not cut belongs wholly to the atom holding its centre, so neighbours that overlap a little
    sideways still come apart cleanly. Each inner bound says what splitting or merging there costs.
    """
    keep = np.zeros(labels.max() + 1, dtype=bool)
    keep[list(components)] = True
    mask = keep[labels]
    columns = mask.sum(axis=0).astype(np.float32)
    inked = np.flatnonzero(columns)
    # Blocks: runs of inked columns; a boundary between blocks is the middle of the empty gap.
    breaks = np.flatnonzero(np.diff(inked) > 1)
    starts = [int(inked[0]), *(int(inked[b + 1]) for b in breaks)]
    stops = [*(int(inked[b]) + 1 for b in breaks), int(inked[-1]) + 1]
    kinds, tall = {}, {}
    for start, stop in zip(starts, stops):
        for position, kind, both_tall in _cuts(columns, start, stop, line_height, components):
            if position not in kinds:
                kinds[position], tall[position] = kind, both_tall
    for stop, start in zip(stops[:-1], starts[1:]):
        kinds[(stop + start) // 2] = "gap"
        tall[(stop + start) // 2] = any(_is_tall(c, line_height) for c in components.values() if c.right == stop) \
            and any(_is_tall(c, line_height) for c in components.values() if c.left == start)
    positions = sorted(kinds)
    edges = [0, *positions, labels.shape[1]]
    atoms = list(zip(edges[:-1], edges[1:]))
    cut_positions = [x for x in positions if kinds[x] == "cut"]
    owner, sliced = {}, np.zeros_like(keep)
    for i, c in components.items():
        if any(c.left < x < c.right for x in cut_positions) and c.right - c.left >= CUT_WIDTH * line_height:
            sliced[i] = True
        elif any(c.left < x < c.right for x in positions):
            centre = (c.left + c.right) / 2
            owner[i] = next(a for a, (start, stop) in enumerate(atoms) if start <= centre < stop)
    sliced_mask = sliced[labels]
    bounds = []
    for x in positions:
        column = sliced_mask[:, x].astype(np.int8)
        crossed = int(np.count_nonzero(np.diff(column) == 1) + column[0]) if kinds[x] == "cut" else 0
        bounds.append(Bound(kinds[x], crossed, tall[x]))
    return atoms, owner, bounds


def _is_tall(component, line_height):
    """Whether a stroke is tall for its line."""
    return component.bottom - component.top >= TALL_HEIGHT * line_height


def _cuts(columns, start, stop, line_height, components):
    """(column, kind, both sides tall) cuts inside one block of ink: between components that overlap a little
    ("overlap"), and at the thinnest columns of wide blobs ("cut")."""
    width = stop - start
    if width < CUT_WIDTH * line_height:
        return []
    spacing = max(2, round(MIN_ATOM * line_height))
    found = []
    # Where one component ends and the next begins, sideways: the middle of their overlap.
    inside = sorted((c for c in components.values() if c.left >= start and c.right <= stop), key=lambda c: c.left)
    for a, b in zip(inside, inside[1:]):
        if b.left >= a.left + spacing and b.right >= a.right + spacing:
            found.append(((min(a.right, b.right) + b.left) // 2, "overlap",
                          _is_tall(a, line_height) and _is_tall(b, line_height)))
    smooth = ndimage_routines.uniform_filter1d(columns[start:stop], 3)
    lowest = ndimage_routines.minimum_filter1d(smooth, 2 * (spacing // 2) + 1)
    for x in range(spacing, width - spacing):
        is_minimum = smooth[x] == lowest[x] and smooth[x - 1] != smooth[x]  # A local minimum, counted once.
        if is_minimum and all(abs(start + x - other) >= spacing for other, *_ in found):
            found.append((start + x, "cut", False))
    return found


def _candidates(ink, labels, components, owner, atoms, line_height):
    """Every run of up to MAX_RUN neighbouring atoms, prepared as a digit: {(i, j): Candidate or None}."""
    # Which atom each stroke pixel belongs to: by column, except for components given whole to one atom.
    column_atom = np.zeros(ink.shape[1], dtype=np.int32)
    for a, (start, stop) in enumerate(atoms):
        column_atom[start:stop] = a
    pixel_atom = np.broadcast_to(column_atom, ink.shape).copy()
    for i, a in owner.items():
        pixel_atom[labels == i] = a
    keep = np.zeros(labels.max() + 1, dtype=bool)
    keep[list(components)] = True
    pixel_atom[~keep[labels]] = -1
    candidates = {}
    for i in range(len(atoms)):
        for j in range(i + 1, min(len(atoms), i + MAX_RUN) + 1):
            mask = (pixel_atom >= i) & (pixel_atom < j)
            candidates[(i, j)] = _candidate(ink, mask)
            if candidates[(i, j)] and candidates[(i, j)].width > MAX_RUN_WIDTH * line_height:
                break
    return candidates


def _candidate(ink, mask):
    """One candidate digit: its 28x28 image and box, or None when it holds no ink."""
    if not mask.any():
        return None
    # The neighbours' ink must not come along with the soft edges: only this candidate's strokes and their rim.
    own = ink * preparation.grow(mask, preparation.GROW_PIXELS)
    try:
        image = preparation.fit_and_center(own, mask)
    except exceptions.NoDigitFound:
        return None
    box = _mask_box(mask)
    return Candidate(image, box, box[3], box[2], int(np.count_nonzero(mask)))


def _confidence(candidates, classify):
    """{run: how confidently the classifier reads the candidate as a digit} (1 for all without a classifier),
    and {run: the classifier's probabilities} (empty without one)."""
    valid = [run for run, c in candidates.items() if c is not None]
    if classify is None or not valid:
        return dict.fromkeys(valid, 1.0), {}
    probabilities = np.asarray(classify(np.stack([candidates[run].image for run in valid])), dtype=np.float64)
    return dict(zip(valid, probabilities[:, :DIGITS].max(axis=1))), dict(zip(valid, probabilities))


def _scores(candidates, bounds, confidence, line_height, largest_area):
    """{run: (score, is_a_digit)}: the best of reading a run as one digit or dropping it as a fragment.

    A digit scores its log confidence, less costs for shapes no digit has, for the gaps it bridges and for
    the strokes cut at its right end.
    """
    merge, split_at = [], []
    for bound in bounds:  # Bound k lies between atoms k and k + 1.
        merge.append(SIDE_BY_SIDE_COST if bound.tall else GAP_COST if bound.kind == "gap" else 0.0)
        split_at.append(CUT_COST * bound.crossed)
    scores = {}
    for (i, j), c in candidates.items():
        joins = sum(merge[i:j - 1])
        split = split_at[j - 1] if j - 1 < len(bounds) else 0.0
        if c is None:
            scores[(i, j)] = (-joins - split, False)  # No ink: nothing read, nothing lost.
            continue
        score = math.log(max(confidence[(i, j)], 1e-9)) - joins - split
        short = c.height < SHORT_HEIGHT * line_height
        if short:
            score -= SHORT_COST
        ratio = c.width / max(c.height, 1)
        if ratio > WIDE_RATIO:
            score -= WIDE_COST * (ratio - WIDE_RATIO)
        drop = -DROP_COST - joins - split
        if short and c.area < DROP_AREA * largest_area and drop > score:
            scores[(i, j)] = (drop, False)
        else:
            scores[(i, j)] = (score, True)
    return scores


def _best_partition(count, scores):
    """The best summed score, and the runs (i, j) tiling atoms 0..count that reach it (dynamic programming)."""
    best = [0.0] + [-math.inf] * count
    back = [0] * (count + 1)
    for j in range(1, count + 1):
        for i in range(max(0, j - MAX_RUN), j):
            if (i, j) in scores and best[i] + scores[(i, j)][0] > best[j]:
                best[j], back[j] = best[i] + scores[(i, j)][0], i
    runs, j = [], count
    while j > 0:
        runs.append((back[j], j))
        j = back[j]
    return best[count], runs[::-1]


def _mask_box(mask):
    """(left, top, width, height) of a mask's pixels."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def _shift_box(box, offset):
    """A box in the line's ink (a window of the image, maybe) to the image's pixels."""
    left, top, width, height = box
    return left + offset[1], top + offset[0], width, height


def _scale_box(box, scale_x, scale_y):
    """A box in working pixels to the upload's pixels."""
    left, top, width, height = box
    return {"left": int(math.floor(left * scale_x)), "top": int(math.floor(top * scale_y)),
            "width": int(math.ceil(width * scale_x)), "height": int(math.ceil(height * scale_y))}
