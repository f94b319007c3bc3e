"""Drawings that are not digits (letters, signs, shapes, scribbles), made the way people draw on the page.

Each template is pen strokes in a unit box (x right, y down). A drawing jitters the strokes' points, slants,
rotates and stretches them, draws them with a random pen on a canvas (white on black like the page, or ink
on paper with a little noise), and passes the canvas through the service's own preparation, so a negative
looks exactly like what the model is fed for an upload.

Shapes that are, or cannot be told from, digits are left out on purpose: O and o (0), l, I, | and ! (its dot
is dropped as a speck: 1), Z with a curved top (2), S (5), b and G (6), B (8), g, q, a and P (9), a plain
circle, a single line.

Templates are drawn many ways, not one: a question mark's hook round or flat, its stem straight or bent, its
dot a dot or a dash; a face round or oval, eyes as dots, dashes or rings, a mouth narrow or wide, smiling,
sad, flat or open. Scribbles, the endless kind, come smooth, angular (straight strokes through random
points), as loops, zigzags, scratching out, coils and doodles of unrelated pieces.

Templates come in two disjoint groups: TRAINING (every drawing the issue names, and more) and HELD_OUT
(others, never trained on), so the refusal rate reported on HELD_OUT says how well refusing generalises.
"""

import math

import numpy as np
from PIL import Image, ImageDraw

from digits.imaging import exceptions, preparation

JITTER = 0.025  # Each control point moves by this much of the box (standard deviation).
MAX_SLANT = 0.3
MAX_ROTATION_DEGREES = 14.0
ASPECT_RANGE = (0.65, 1.5)  # Width over height, applied to the template's own proportions.
PEN_RANGE = (0.04, 0.13)  # Pen width as a fraction of the drawing's height.
CANVAS_RANGE = (120, 260)  # Canvas side in pixels: preparation resizes anyway, smaller is faster.
PAPER_PROBABILITY = 0.25  # Dark ink on light, noisy paper instead of the page's white on black.


def _arc(cx, cy, rx, ry, start, stop, points=None):
    """Points on an ellipse from angle `start` to `stop` in degrees (0 = right, 90 = down)."""
    count = points or max(6, int(abs(stop - start) / 12))
    angles = np.radians(np.linspace(start, stop, count))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def _circle(cx, cy, r):
    """A closed circle."""
    return _arc(cx, cy, r, r, 0, 360)


def _dot(x, y):
    """A pen dot: a very short stroke."""
    return [(x, y), (x + 0.01, y + 0.01)]


# Letters: each a list of strokes; each stroke a list of (x, y) in 0..1.
def _letter_a(rng):
    top = rng.uniform(0.4, 0.6)
    bar = rng.uniform(0.5, 0.7)
    return [[(0.05, 1.0), (top, 0.0), (0.95, 1.0)], [(0.05 + 0.9 * bar * 0.35, bar), (0.95 - 0.9 * bar * 0.35, bar)]]


def _letter_x(rng):
    return [[(0.0, 0.0), (1.0, 1.0)], [(1.0, 0.0), (0.0, 1.0)]]


def _letter_k(rng):
    middle = rng.uniform(0.4, 0.6)
    if rng.random() < 0.5:
        return [[(0.1, 0.0), (0.1, 1.0)], [(0.9, 0.0), (0.1, middle), (0.9, 1.0)]]
    return [[(0.1, 0.0), (0.1, 1.0)], [(0.9, 0.0), (0.1, middle)], [(0.35, middle - 0.1), (0.9, 1.0)]]


def _letter_small_k(rng):
    return [[(0.15, 0.0), (0.15, 1.0)], [(0.85, 0.4), (0.15, 0.72), (0.85, 1.0)]]


def _letter_m(rng):
    valley = rng.uniform(0.45, 0.85)
    return [[(0.0, 1.0), (0.08, 0.0), (0.5, valley), (0.92, 0.0), (1.0, 1.0)]]


def _letter_w(rng):
    peak = rng.uniform(0.15, 0.5)
    return [[(0.0, 0.0), (0.22, 1.0), (0.5, peak), (0.78, 1.0), (1.0, 0.0)]]


def _letter_h(rng):
    bar = rng.uniform(0.4, 0.6)
    return [[(0.1, 0.0), (0.1, 1.0)], [(0.9, 0.0), (0.9, 1.0)], [(0.1, bar), (0.9, bar)]]


def _letter_r(rng):
    bowl = rng.uniform(0.45, 0.6)
    return [[(0.1, 1.0), (0.1, 0.0)] + _arc(0.1, bowl / 2, 0.75, bowl / 2, -90, 90)[1:] + [(0.1, bowl)],
            [(0.3, bowl), (0.9, 1.0)]]


def _letter_z(rng):
    strokes = [[(0.05, 0.0), (0.95, 0.0), (0.05, 1.0), (0.95, 1.0)]]
    if rng.random() < 0.4:  # The crossed Z many people write.
        strokes.append([(0.25, 0.5), (0.75, 0.5)])
    return strokes


def _letter_q(rng):
    return [_arc(0.5, 0.45, 0.45, 0.45, 0, 360), [(0.55, 0.7), (0.95, 1.0)]]


def _letter_e(rng):
    middle = rng.uniform(0.4, 0.55)
    return [[(0.9, 0.0), (0.1, 0.0), (0.1, 1.0), (0.9, 1.0)], [(0.1, middle), (0.7, middle)]]


def _letter_n(rng):
    return [[(0.1, 1.0), (0.1, 0.0), (0.9, 1.0), (0.9, 0.0)]]


def _letter_y(rng):
    fork = rng.uniform(0.4, 0.55)
    return [[(0.0, 0.0), (0.5, fork), (1.0, 0.0)], [(0.5, fork), (0.5, 1.0)]]


def _letter_v(rng):
    return [[(0.0, 0.0), (0.5, 1.0), (1.0, 0.0)]]


def _letter_small_h(rng):
    return [[(0.15, 0.0), (0.15, 1.0)], [(0.15, 0.65), *_arc(0.5, 0.65, 0.35, 0.25, 180, 360)[1:], (0.85, 1.0)]]


def _letter_small_n(rng):
    return [[(0.1, 1.0), (0.1, 0.1), *_arc(0.5, 0.35, 0.4, 0.3, 180, 360)[1:], (0.9, 1.0)]]


def _letter_small_m(rng):
    return [[(0.0, 1.0), (0.0, 0.1), *_arc(0.25, 0.3, 0.25, 0.25, 180, 360)[1:], (0.5, 1.0)],
            [(0.5, 0.3), *_arc(0.75, 0.3, 0.25, 0.25, 180, 360)[1:], (1.0, 1.0)]]


def _letter_small_w(rng):
    return [[(0.0, 0.0), *_arc(0.25, 0.6, 0.25, 0.4, 180, 0)[1:-1], (0.5, 0.3),
             *_arc(0.75, 0.6, 0.25, 0.4, 180, 0)[1:-1], (1.0, 0.0)]]


def _letter_f(rng):
    return [[(0.9, 0.1), *_arc(0.55, 0.25, 0.3, 0.25, -20, -180)[1:], (0.25, 1.0)], [(0.0, 0.45), (0.7, 0.45)]]


def _letter_t(rng):
    return [[(0.0, 0.0), (1.0, 0.0)], [(0.5, 0.0), (0.5, 1.0)]]


def _letter_small_r(rng):
    return [[(0.2, 0.3), (0.2, 1.0)], [(0.2, 0.6), *_arc(0.6, 0.55, 0.4, 0.3, 180, 300)[1:]]]


def _letter_l_shape(rng):
    return [[(0.1, 0.0), (0.1, 1.0), (0.9, 1.0)]]


# Signs.
def _hash(rng):
    slant = rng.uniform(0.0, 0.2)
    return [[(0.3 + slant, 0.0), (0.3 - slant, 1.0)], [(0.7 + slant, 0.0), (0.7 - slant, 1.0)],
            [(0.0, 0.33), (1.0, 0.33)], [(0.0, 0.67), (1.0, 0.67)]]


def _at(rng):
    inner = _arc(0.5, 0.5, 0.18, 0.2, 0, 360)
    outer = [(0.68, 0.3), (0.68, 0.65), (0.82, 0.7), *_arc(0.5, 0.5, 0.48, 0.48, 20, 340)[1:]]
    return [inner, outer]


def _question(rng):
    """A question mark drawn many ways: a round or flat hook, a straight or curved stem, a dot or a dash."""
    radius_x, radius_y = rng.uniform(0.3, 0.5), rng.uniform(0.18, 0.32)
    start, stop = rng.uniform(150, 200), rng.uniform(380, 460)
    hook = _arc(0.5, radius_y, radius_x, radius_y, start, stop)
    stem_end = rng.uniform(0.6, 0.8)
    stem = [(0.5 + rng.uniform(-0.08, 0.08), stem_end)]
    if rng.random() < 0.5:  # The stem bends on its way down.
        stem = _smooth(np.array([hook[-1], (0.5 + rng.uniform(-0.1, 0.1), (hook[-1][1] + stem_end) / 2), stem[0]]),
                       samples=5)[1:]
    gap = rng.uniform(0.1, 0.2)
    dot_y = min(1.0, stem_end + gap)
    dot = _dot(0.5, dot_y) if rng.random() < 0.7 else [(0.5, dot_y - 0.04), (0.5, dot_y)]
    return [hook + stem, dot]


def _plus(rng):
    cross = rng.uniform(0.4, 0.6)
    return [[(0.5, 0.0), (0.5, 1.0)], [(0.0, cross), (1.0, cross)]]


def _percent(rng):
    return [[(0.95, 0.0), (0.05, 1.0)], _circle(0.2, 0.2, 0.17), _circle(0.8, 0.8, 0.17)]


def _ampersand(rng):
    return [[(0.95, 1.0), (0.25, 0.45), *_arc(0.45, 0.22, 0.22, 0.2, 180, 360)[1:], (0.2, 0.7),
             *_arc(0.4, 0.8, 0.25, 0.2, 180, 60)[1:], (0.9, 0.55)]]


def _asterisk(rng):
    return [[(0.5, 0.0), (0.5, 1.0)], [(0.05, 0.25), (0.95, 0.75)], [(0.95, 0.25), (0.05, 0.75)]]


def _equals(rng):
    return [[(0.0, 0.3), (1.0, 0.3)], [(0.0, 0.7), (1.0, 0.7)]]


def _dollar(rng):
    ess = _arc(0.5, 0.3, 0.35, 0.2, -20, -270) + _arc(0.5, 0.7, 0.35, 0.2, -90, 160)[1:]
    return [ess, [(0.5, 0.0), (0.5, 1.0)]]


def _less_than(rng):
    return [[(0.9, 0.0), (0.1, 0.5), (0.9, 1.0)]]


def _divide(rng):
    return [[(0.0, 0.5), (1.0, 0.5)], _dot(0.5, 0.15), _dot(0.5, 0.85)]


def _arrow(rng):
    return [[(0.0, 0.5), (1.0, 0.5)], [(0.65, 0.15), (1.0, 0.5), (0.65, 0.85)]]


def _check_mark(rng):
    return [[(0.0, 0.55), (0.3, 1.0), (1.0, 0.0)]]


# Shapes and drawings.
def _square(rng):
    return [[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.02)]]


def _triangle(rng):
    apex = rng.uniform(0.2, 0.8)
    return [[(apex, 0.0), (1.0, 1.0), (0.0, 1.0), (apex, 0.0)]]


def _diamond(rng):
    return [[(0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5), (0.5, 0.0)]]


def _star(rng):
    points = [(0.5 + 0.5 * math.sin(math.radians(144 * k)), 0.5 - 0.5 * math.cos(math.radians(144 * k)))
              for k in range(6)]
    return [points]


def _smiley(rng):
    """A face: round or oval, eyes as dots, dashes or rings, a mouth narrow or wide, smiling, sad, flat or open."""
    if rng.random() < 0.7:
        outline = _circle(0.5, 0.5, 0.5)
    else:  # Drawn in one go, the end overshooting or falling short of the start.
        outline = _arc(0.5, 0.5, 0.5, rng.uniform(0.42, 0.5), rng.uniform(-100, -60), rng.uniform(240, 320))
    eye_y, eye_apart = rng.uniform(0.28, 0.42), rng.uniform(0.12, 0.22)
    eyes = []
    for x in (0.5 - eye_apart, 0.5 + eye_apart):
        style = rng.random()
        if style < 0.5:
            eyes.append(_dot(x, eye_y))
        elif style < 0.8:
            eyes.append([(x, eye_y - 0.06), (x, eye_y + 0.05)])
        else:
            eyes.append(_circle(x, eye_y, 0.05))
    width, depth = rng.uniform(0.12, 0.36), rng.uniform(0.05, 0.22)
    mouth_y = rng.uniform(0.58, 0.72)
    mood = rng.random()
    if mood < 0.55:
        mouth = [_arc(0.5, mouth_y - depth, width, depth, rng.uniform(5, 40), rng.uniform(140, 175))]
    elif mood < 0.7:  # Sad.
        mouth = [_arc(0.5, mouth_y + depth, width, depth, rng.uniform(190, 220), rng.uniform(320, 350))]
    elif mood < 0.82:  # Flat.
        mouth = [[(0.5 - width, mouth_y), (0.5 + width, mouth_y + rng.normal(0, 0.02))]]
    else:  # Laughing: an open mouth, a straight top and a round bottom.
        mouth = [[(0.5 - width, mouth_y - depth / 2), (0.5 + width, mouth_y - depth / 2),
                  *_arc(0.5, mouth_y - depth / 2, width, depth, 0, 180)[1:]]]
    nose = [[(0.5, 0.45), (0.47, 0.53)]] if rng.random() < 0.2 else []
    return [outline, *eyes, *mouth, *nose]


def _cross(rng):
    if rng.random() < 0.5:  # A Latin cross, the bar high.
        return [[(0.5, 0.0), (0.5, 1.0)], [(0.15, 0.3), (0.85, 0.3)]]
    return [[(0.0, 0.0), (1.0, 1.0)], [(1.0, 0.0), (0.0, 1.0)], _circle(0.5, 0.5, 0.55)][: 2 + int(rng.random() < 0.3)]


def _flower(rng):
    petals = int(rng.integers(5, 9))
    strokes = [_circle(0.5, 0.4, 0.1)]
    for k in range(petals):
        angle = 2 * math.pi * k / petals
        cx, cy = 0.5 + 0.22 * math.cos(angle), 0.4 + 0.22 * math.sin(angle)
        strokes.append(_arc(cx, cy, 0.12, 0.12, 0, 360, points=14))
    if rng.random() < 0.6:
        strokes.append([(0.5, 0.62), (0.5, 1.0)])
    return strokes


def _heart(rng):
    return [[(0.5, 1.0), (0.05, 0.45), *_arc(0.27, 0.27, 0.23, 0.23, 150, 340)[1:], (0.5, 0.25),
             *_arc(0.73, 0.27, 0.23, 0.23, 200, 390)[1:], (0.95, 0.45), (0.5, 1.0)]]


def _house(rng):
    return [[(0.1, 0.45), (0.1, 1.0), (0.9, 1.0), (0.9, 0.45), (0.1, 0.45)], [(0.0, 0.5), (0.5, 0.0), (1.0, 0.5)]]


def _sun(rng):
    strokes = [_circle(0.5, 0.5, 0.22)]
    rays = int(rng.integers(6, 11))
    for k in range(rays):
        angle = 2 * math.pi * k / rays
        strokes.append([(0.5 + 0.32 * math.cos(angle), 0.5 + 0.32 * math.sin(angle)),
                        (0.5 + 0.5 * math.cos(angle), 0.5 + 0.5 * math.sin(angle))])
    return strokes


def _stick_figure(rng):
    return [_circle(0.5, 0.15, 0.15), [(0.5, 0.3), (0.5, 0.7)], [(0.1, 0.45), (0.9, 0.45)],
            [(0.15, 1.0), (0.5, 0.7), (0.85, 1.0)]]


def _tree(rng):
    return [[(0.5, 0.0), (0.0, 0.8), (1.0, 0.8), (0.5, 0.0)], [(0.5, 0.8), (0.5, 1.0)]]


def _cloud(rng):
    return [_arc(0.2, 0.65, 0.2, 0.2, 90, 270) + _arc(0.45, 0.4, 0.25, 0.25, 200, 340)[1:]
            + _arc(0.78, 0.6, 0.22, 0.25, 250, 450)[1:] + [(0.2, 0.85)]]


def _spiral(rng):
    turns = rng.uniform(2.0, 3.5)
    angles = np.linspace(0, 2 * math.pi * turns, int(40 * turns))
    radius = 0.5 * angles / angles[-1]
    return [list(zip(0.5 + radius * np.cos(angles), 0.5 + radius * np.sin(angles)))]


# Scribbles.
def _scribble(rng):
    """A smooth curve through many random points, the way a bored hand moves."""
    count = int(rng.integers(6, 14))
    return [_smooth(rng.uniform(0, 1, size=(count, 2)))]


def _zigzag(rng):
    """Back and forth across the box, top to bottom or left to right."""
    turns = int(rng.integers(4, 10))
    along = np.linspace(0, 1, turns)
    across = np.where(np.arange(turns) % 2 == 0, 0.0, 1.0) + rng.normal(0, 0.05, turns)
    points = np.stack([across, along], axis=1) if rng.random() < 0.5 else np.stack([along, across], axis=1)
    return [list(map(tuple, points))]


def _several_strokes(rng):
    """A few unrelated short strokes."""
    return [list(map(tuple, rng.uniform(0, 1, size=(int(rng.integers(2, 4)), 2)))) for _ in range(rng.integers(3, 6))]


def _coil(rng):
    """Loops running sideways, like a telephone cord."""
    loops = rng.uniform(3, 6)
    t = np.linspace(0, 2 * math.pi * loops, int(30 * loops))
    x = t / t[-1] * 0.8 + 0.1 + 0.12 * np.cos(t)
    y = 0.5 + 0.35 * np.sin(t)
    return [list(zip(x, y))]


def _hatching(rng):
    """Parallel strokes, as when shading or crossing something out."""
    count = int(rng.integers(4, 8))
    return [[(0.0, k / count + 0.1), (1.0, k / count - 0.1)] for k in range(count + 1)]


def _angular_scribble(rng):
    """Straight strokes through random points, corners and crossings: a scrawl made in a hurry."""
    count = int(rng.integers(6, 15))
    return [list(map(tuple, rng.uniform(0, 1, size=(count, 2))))]


def _loops(rng):
    """Overlapping loops along a line, as a pen tests itself (llll, eeee)."""
    loops = rng.uniform(3, 6)
    t = np.linspace(0, 2 * math.pi * loops, int(24 * loops))
    radius = rng.uniform(0.15, 0.45)
    x = t / t[-1] + radius * 0.6 * np.sin(t)
    y = 0.5 - radius * np.cos(t) + rng.normal(0, 0.02, t.size).cumsum() * 0.3
    return [list(zip(x, y))]


def _scratch(rng):
    """Dense strokes back and forth at any angle, as when crossing something out."""
    turns = int(rng.integers(6, 16))
    along = np.sort(rng.uniform(0, 1, turns))
    across = np.where(np.arange(turns) % 2 == 0, 0.0, 1.0) + rng.normal(0, 0.1, turns)
    angle = rng.uniform(0, math.pi)
    points = np.stack([along - 0.5, across - 0.5], axis=1) @ np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return [list(map(tuple, points))]


def _doodle(rng):
    """Three to five unrelated pieces side by side and over each other: rings, arcs, lines, a scrawl."""
    strokes = []
    for _ in range(int(rng.integers(3, 6))):
        cx, cy, size = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85), rng.uniform(0.1, 0.35)
        kind = rng.random()
        if kind < 0.3:
            strokes.append(_arc(cx, cy, size, size * rng.uniform(0.6, 1.4), 0, rng.uniform(200, 360)))
        elif kind < 0.55:
            strokes.append([(cx - size, cy + rng.uniform(-size, size)), (cx + size, cy + rng.uniform(-size, size))])
        elif kind < 0.8:
            strokes.append(list(map(tuple, [cx, cy] + rng.uniform(-size, size, size=(int(rng.integers(3, 6)), 2)))))
        else:
            strokes.append(_dot(cx, cy))
    return strokes


def _wave(rng):
    """A wavy line or a few of them (~, ≈)."""
    waves = rng.uniform(1.5, 3.5)
    x = np.linspace(0, 1, 40)
    lines = int(rng.integers(1, 4))
    return [list(zip(x, 0.5 + k * 0.3 + 0.15 * np.sin(2 * math.pi * waves * x))) for k in range(lines)]


def _infinity(rng):
    """∞: a figure eight lying down."""
    t = np.linspace(0, 2 * math.pi, 60)
    return [list(zip(0.5 + 0.5 * np.sin(t), 0.5 + 0.25 * np.sin(2 * t)))]


def _envelope(rng):
    """A box with its diagonals, or with a flap."""
    box = [(0.0, 0.2), (1.0, 0.2), (1.0, 0.9), (0.0, 0.9), (0.0, 0.2)]
    if rng.random() < 0.5:
        return [box, [(0.0, 0.2), (0.5, 0.6), (1.0, 0.2)]]
    return [box, [(0.0, 0.2), (1.0, 0.9)], [(1.0, 0.2), (0.0, 0.9)]]


def _fish(rng):
    body = _arc(0.4, 0.5, 0.35, 0.25, 0, 360)
    return [body, [(0.72, 0.5), (1.0, 0.25), (1.0, 0.75), (0.72, 0.5)], _dot(0.2, 0.45)]


def _smooth(points, samples=12):
    """A Catmull-Rom curve through the points."""
    padded = np.concatenate([points[:1], points, points[-1:]])
    curve = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1 : i + 3]
        for t in np.linspace(0, 1, samples, endpoint=False):
            curve.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t * t
                                + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    curve.append(points[-1])
    return [tuple(point) for point in curve]


TRAINING = {
    "A": _letter_a, "X": _letter_x, "K": _letter_k, "M": _letter_m, "W": _letter_w, "H": _letter_h, "R": _letter_r,
    "k": _letter_small_k, "Z": _letter_z, "Q": _letter_q, "E": _letter_e, "N": _letter_n, "Y": _letter_y,
    "V": _letter_v, "h": _letter_small_h, "n": _letter_small_n, "w": _letter_small_w,
    "#": _hash, "@": _at, "?": _question, "+": _plus, "%": _percent, "&": _ampersand, "=": _equals,
    "$": _dollar, "arrow": _arrow,
    "square": _square, "triangle": _triangle, "smiley": _smiley, "cross": _cross, "flower": _flower,
    "star": _star, "heart": _heart, "house": _house,
    "scribble": _scribble, "zigzag": _zigzag, "strokes": _several_strokes, "coil": _coil,
    "angular scribble": _angular_scribble, "loops": _loops, "scratch": _scratch,
    "doodle": _doodle, "wave": _wave, "infinity": _infinity,
    "envelope": _envelope, "fish": _fish,
}
HELD_OUT = {
    "F": _letter_f, "T": _letter_t, "m": _letter_small_m, "r": _letter_small_r, "L": _letter_l_shape,
    "*": _asterisk, "<": _less_than, "÷": _divide, "check": _check_mark,
    "diamond": _diamond, "sun": _sun, "stick figure": _stick_figure, "tree": _tree, "cloud": _cloud,
    "spiral": _spiral, "hatching": _hatching,
}
# Scribbles are weighted up: they are endless in variety, and people draw them to test the page.
WEIGHTS = {"scribble": 3.0, "angular scribble": 3.0, "zigzag": 1.5, "strokes": 2.0, "coil": 1.0,
           "loops": 1.0, "scratch": 1.0, "doodle": 1.5, "?": 2.0, "smiley": 2.0}


def draw(template, rng):
    """One drawing of `template` as the 28x28 image the model reads (float32, ink 1 on 0)."""
    strokes = [np.asarray(stroke, dtype=np.float64) for stroke in template(rng)]
    strokes = distort(strokes, rng)
    side = int(rng.integers(*CANVAS_RANGE))
    canvas = render(strokes, side, rng)
    return preparation.normalize_digit(canvas)


def distort(strokes, rng):
    """Jitter each point, then slant, rotate and stretch the whole drawing."""
    jittered = [stroke + rng.normal(0, JITTER, stroke.shape) for stroke in strokes]
    aspect = math.exp(rng.uniform(math.log(ASPECT_RANGE[0]), math.log(ASPECT_RANGE[1])))
    slant = rng.uniform(-MAX_SLANT, MAX_SLANT)
    angle = math.radians(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
    cos, sin = math.cos(angle), math.sin(angle)
    matrix = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, slant], [0.0, 1.0]]) @ np.diag([aspect, 1.0])
    return [(stroke - 0.5) @ matrix.T for stroke in jittered]


def render(strokes, side, rng):
    """Draw the strokes with a round pen, fitted into a canvas of side x side, as floats in 0..1."""
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    size = float(max(high - low))
    fill = rng.uniform(0.35, 0.85)  # How much of the canvas the drawing spans.
    scale = fill * side / max(size, 1e-6)
    offset = rng.uniform(0, side * (1 - fill), 2) - low * scale + (fill * side - (high - low) * scale) / 2
    pen = max(1.5, rng.uniform(*PEN_RANGE) * (high[1] - low[1]) * scale)
    image = Image.new("L", (side, side), 0)
    pencil = ImageDraw.Draw(image)
    for stroke in strokes:
        xy = [tuple(point) for point in stroke * scale + offset]
        pencil.line(xy, fill=255, width=max(1, round(pen)), joint="curve")
        for x, y in (xy[0], xy[-1]):
            pencil.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=255)
    canvas = np.asarray(image, dtype=np.float32) / 255.0
    if rng.random() < PAPER_PROBABILITY:
        paper = rng.uniform(0.75, 0.97)
        ink = rng.uniform(0.05, 0.3)
        canvas = paper - (paper - ink) * canvas + rng.normal(0, rng.uniform(0.0, 0.03), canvas.shape)
        canvas = np.clip(canvas, 0.0, 1.0).astype(np.float32)
    return canvas


def generate(count, seed, templates=None):
    """`count` negatives (count, 28, 28) float32 and the template name of each, reproducible from `seed`."""
    templates = TRAINING if templates is None else templates
    names = sorted(templates)
    weights = np.array([WEIGHTS.get(name, 1.0) for name in names])
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(names), size=count, p=weights / weights.sum())
    images, kinds = np.zeros((count, preparation.IMAGE_SIDE, preparation.IMAGE_SIDE), np.float32), []
    for index, which in enumerate(chosen):
        for _ in range(5):  # A drawing that prepares to nothing (all of it cut off) is drawn again.
            try:
                images[index] = draw(templates[names[which]], rng)
                break
            except exceptions.DigitInputError:
                continue
        kinds.append(names[which])
    return images, kinds
