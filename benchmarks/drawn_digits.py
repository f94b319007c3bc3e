"""Digits and numbers drawn with a mouse on the Angular client's canvas, through `/upload`, as users draw them.

    python3 -m benchmarks.drawn_digits [--model mnist-neural.h5] [--repeats 10] [--numbers 100] [--seed 11]

The strokes are written out by hand below (two or three ways of drawing most digits: a 1 as one line, with
a flag, with a base; a 4 closed or open; a 7 with or without its bar; an 8 in one stroke or two loops),
independently of MNIST and of the training data. Each drawing is jittered, slanted and sized at random and
drawn as the client draws: 15 px round white strokes on black, an RGBA PNG. Single digits 180 to 330 px tall
near the middle of the 400x400 canvas, and 40 to 100 px tall anywhere on it (small, off-centre); numbers of
2 to 5 digits 150 to 280 px tall on a canvas 400 px tall and as wide as they need, with clear gaps or
nearly touching, and every drawing followed by a 1 (a narrow 1 after a digit makes the narrowest numbers).
A number counts only when read exactly; a refusal counts as wrong.
"""

import argparse
import io
import math

import numpy as np

from digits.serving import service
from testsupport import images


def _arc(centre_x, centre_y, radius_x, radius_y, start, stop, points=24):
    """Points along an ellipse's arc, angles in degrees, clockwise on screen (y grows downwards)."""
    return [(centre_x + radius_x * math.cos(math.radians(a)), centre_y + radius_y * math.sin(math.radians(a)))
            for a in np.linspace(start, stop, points)]


# Each digit's strokes in a unit box (x right, y down), in the order a person draws them; the key's first
# character is the digit.
DRAWINGS = {
    "0": [_arc(0.5, 0.5, 0.32, 0.45, -90, 275)],
    "0 narrow": [_arc(0.5, 0.5, 0.28, 0.47, -100, 265)],
    "1": [[(0.5, 0.05), (0.5, 0.95)]],
    "1 flag": [[(0.3, 0.25), (0.55, 0.05), (0.55, 0.95)]],
    "1 flag and base": [[(0.3, 0.25), (0.55, 0.05), (0.55, 0.95)], [(0.3, 0.95), (0.8, 0.95)]],
    "2": [[*_arc(0.5, 0.3, 0.3, 0.25, 200, 360), (0.75, 0.45), (0.2, 0.95), (0.85, 0.95)]],
    "2 round": [[*_arc(0.5, 0.3, 0.3, 0.25, 190, 380), (0.2, 0.95), (0.85, 0.92)]],
    "3": [[*_arc(0.5, 0.28, 0.28, 0.23, 200, 450), *_arc(0.5, 0.73, 0.32, 0.23, 270, 520)]],
    "3 flat top": [[(0.2, 0.05), (0.8, 0.05), (0.45, 0.42), *_arc(0.5, 0.7, 0.32, 0.25, 290, 520)]],
    "4": [[(0.6, 0.05), (0.15, 0.65), (0.9, 0.65)], [(0.65, 0.3), (0.65, 0.95)]],
    "4 open": [[(0.25, 0.05), (0.2, 0.55), (0.8, 0.55)], [(0.7, 0.05), (0.7, 0.95)]],
    "5": [[(0.8, 0.05), (0.3, 0.05), (0.25, 0.45), *_arc(0.5, 0.68, 0.32, 0.27, 240, 500)]],
    "5 bar last": [[(0.3, 0.05), (0.25, 0.45), *_arc(0.5, 0.68, 0.32, 0.27, 240, 500)], [(0.3, 0.05), (0.8, 0.05)]],
    "6": [[(0.7, 0.05), *_arc(0.5, 0.68, 0.3, 0.27, 200, 560)]],
    "6 curved": [[*_arc(0.8, 0.5, 0.6, 0.45, 250, 180, 10), *_arc(0.5, 0.72, 0.3, 0.23, 180, 540)]],
    "7": [[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)]],
    "7 crossed": [[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)], [(0.35, 0.5), (0.75, 0.5)]],
    "8": [[*_arc(0.5, 0.27, 0.25, 0.22, 90, 450), *_arc(0.5, 0.72, 0.3, 0.23, -90, 270)]],
    "8 two loops": [_arc(0.5, 0.27, 0.25, 0.22, 0, 360), _arc(0.5, 0.72, 0.3, 0.23, 0, 360)],
    "9": [[*_arc(0.5, 0.3, 0.28, 0.25, 0, 360), (0.78, 0.3), (0.7, 0.95)]],
    "9 straight": [[*_arc(0.48, 0.3, 0.28, 0.25, 10, 370), (0.76, 0.35), (0.76, 0.95)]],
}


def placed(name, rng, left, top, height, width):
    """A drawing's strokes in canvas pixels: in the box (left, top, width, height), slanted and jittered."""
    slant = rng.uniform(-0.2, 0.2)
    shift = rng.normal(0, 0.02, size=2)
    strokes = []
    for stroke in DRAWINGS[name]:
        strokes.append([(left + (x + slant * (0.5 - y) + shift[0] + rng.normal(0, 0.008)) * width,
                         top + (y + shift[1] + rng.normal(0, 0.008)) * height) for x, y in stroke])
    return strokes


def digit_canvas(name, rng, small):
    """One digit on the 400x400 canvas: large near the middle, or small anywhere."""
    height = rng.uniform(40, 100) if small else rng.uniform(180, 330)
    width = height * rng.uniform(0.55, 0.8)
    if small:
        left, top = rng.uniform(10, 390 - width), rng.uniform(10, 390 - height)
    else:
        left, top = (400 - width) / 2 + rng.uniform(-40, 40), (400 - height) / 2 + rng.uniform(-30, 30)
    return images.canvas_png(placed(name, rng, left, top, height, width))


def number_canvas(names, rng, touching):
    """Digits side by side on a canvas 400 px tall, with clear gaps or nearly touching."""
    height = rng.uniform(150, 280)
    top = rng.uniform(20, 380 - height)
    left, strokes = rng.uniform(40, 120), []
    for name in names:
        width = height * (0.35 if name.startswith("1") else rng.uniform(0.55, 0.8))
        strokes += placed(name, rng, left, top + rng.uniform(-10, 10), height, width)
        left += width + (rng.uniform(-5, 10) if touching else rng.uniform(20, 70))
    return images.canvas_png(strokes, width=max(600, int(left + rng.uniform(40, 150))))


def read(client, data):
    """What /upload answers for the image: the digits read, or the error's code."""
    response = client.post("/upload", data={"file": (io.BytesIO(data), "canvas.png")},
                           content_type="multipart/form-data")
    body = response.get_json()
    return body if response.status_code == 200 else body["error"]


def main():
    """Print each set's share read exactly, and what was read instead."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="mnist-neural.h5", help="model file")
    parser.add_argument("--repeats", type=int, default=10, help="drawings of each single digit per set")
    parser.add_argument("--numbers", type=int, default=100, help="numbers per set, 2 to 5 digits long")
    parser.add_argument("--seed", type=int, default=11, help="seed of the jitter, sizes and places")
    args = parser.parse_args()
    client = service.create_app({"TESTING": True, "MODEL_PATH": args.model, "ACCESS_LOG": False}).test_client()
    rng = np.random.default_rng(args.seed)
    names = list(DRAWINGS)
    sets = {
        "single digits, large": [(name[0], digit_canvas(name, rng, small=False))
                                 for _ in range(args.repeats) for name in names],
        "single digits, small and off-centre": [(name[0], digit_canvas(name, rng, small=True))
                                                for _ in range(args.repeats) for name in names],
    }
    for touching in (False, True):
        drawn = []
        for index in range(args.numbers):
            chosen = [names[i] for i in rng.integers(0, len(names), 2 + index % 4)]
            drawn.append(("".join(name[0] for name in chosen), number_canvas(chosen, rng, touching)))
        sets["numbers, nearly touching" if touching else "numbers, apart"] = drawn
    ones = [name for name in names if name.startswith("1")]
    sets["pairs ending in 1, apart (the narrowest numbers)"] = [
        (name[0] + "1", number_canvas([name, one], rng, touching=False))
        for _ in range(max(1, args.repeats // 5)) for name in names for one in ones]
    for title, drawings in sets.items():
        wrong = [(truth, answer) for truth, answer in ((truth, read(client, data)) for truth, data in drawings)
                 if answer != truth]
        share = 1 - len(wrong) / len(drawings)
        print(f"{title}: {len(drawings) - len(wrong)}/{len(drawings)} ({share:.1%})"
              + (f"; wrong (expected, read): {wrong}" if wrong else ""))


if __name__ == "__main__":
    main()
