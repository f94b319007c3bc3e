"""Does the service say "not a digit" for non-digits, without refusing digits? Everything through preparation.

    python3 -m benchmarks.not_a_digit [--model mnist-neural.h5] [--negatives 2000] [--realistic 2000] [--seed 7]

Counts, with a refusal counted as wrong for digits:
- MNIST's 10,000 test digits as 28x28 PNGs;
- realistic uploads made from MNIST test digits (testsupport/synthetic.py);
- scikit-learn's 1,797 real 8x8 handwritten digits (load_digits), as 8x8 PNGs and enlarged to 16x16;
- generated non-digits (digits/training/negatives.py) from a seed training never used: the training templates,
  and the held-out templates the model never saw, each as a 400x400 PNG canvas;
- the issue's list of drawings (letters, signs, shapes, six scribbles), written out by hand below as canvas
  strokes, independently of the generator (`--drawings-only` runs just these, in seconds).
"""

import argparse
import collections
import time

import numpy as np
from PIL import Image

from digits.imaging import exceptions, preparation
from digits.serving import classifier, reading
from digits.training import mnist_data, negatives
from testsupport import images, synthetic


def _circle(cx, cy, radius, start=0.0, stop=2 * np.pi, points=40, radius_y=None):
    """Canvas points on an ellipse."""
    return [(cx + radius * np.cos(a), cy + (radius_y or radius) * np.sin(a)) for a in np.linspace(start, stop, points)]


def issue_drawings(seed):
    """The issue's drawings on a 400x400 canvas (pixel strokes for testsupport.images.canvas_png), by name."""
    drawings = {
        "A": [[(110, 330), (200, 70), (290, 330)], [(145, 230), (255, 230)]],
        "X": [[(110, 80), (290, 320)], [(290, 80), (110, 320)]],
        "#": [[(170, 70), (150, 330)], [(260, 70), (240, 330)], [(90, 150), (320, 150)], [(80, 250), (310, 250)]],
        "K": [[(130, 70), (130, 330)], [(280, 70), (135, 210), (285, 330)]],
        "M": [[(90, 330), (110, 80), (200, 250), (290, 80), (310, 330)]],
        "W": [[(80, 80), (140, 320), (200, 150), (260, 320), (320, 80)]],
        "H": [[(120, 70), (120, 330)], [(280, 70), (280, 330)], [(120, 200), (280, 200)]],
        "R": [[(130, 330), (130, 70), *_circle(170, 130, 90, -np.pi / 2, np.pi / 2, 20, 60)[1:], (130, 190)],
              [(180, 190), (290, 330)]],
        "k": [[(140, 60), (140, 340)], [(260, 170), (145, 260), (270, 340)]],
        "x": [[(140, 180), (260, 320)], [(260, 180), (140, 320)]],
        "z": [[(130, 170), (270, 170), (130, 320), (275, 320)]],
        "Q": [_circle(200, 190, 110), [(230, 250), (310, 330)]],
        "@": [_circle(200, 200, 50),
              [(250, 150), (250, 240), (300, 250), *_circle(200, 200, 120, 0.3, 2 * np.pi - 0.2)]],
        "?": [[*_circle(200, 130, 80, np.pi, 2.4 * np.pi, 25), (200, 260)], [(200, 320), (201, 321)]],
        "+": [[(200, 80), (200, 320)], [(80, 200), (320, 200)]],
        "%": [[(300, 70), (100, 330)], _circle(130, 110, 40), _circle(270, 290, 40)],
        "square": [[(100, 100), (300, 100), (300, 300), (100, 300), (100, 102)]],
        "triangle": [[(200, 80), (320, 310), (80, 310), (200, 80)]],
        "cross": [[(200, 60), (200, 340)], [(110, 140), (290, 140)]],
        "flower": [_circle(200, 170, 30), *[_circle(200 + 75 * np.cos(a), 170 + 75 * np.sin(a), 40)
                                           for a in np.linspace(0, 2 * np.pi, 7)[:-1]], [(200, 250), (200, 350)]],
        "smiley": [_circle(200, 200, 130), [(150, 160), (151, 161)], [(250, 160), (251, 161)],
                   _circle(200, 220, 70, 0.3, np.pi - 0.3, 15, 45)],
    }
    rng = np.random.default_rng(seed)
    for index in range(6):
        points = rng.uniform(90, 310, size=(int(rng.integers(6, 12)), 2))
        drawings[f"scribble {index + 1}"] = [[tuple(point) for point in points]]
    return drawings


def read_all(classifier_, uploads):
    """What the service answers per upload: a digit, None for "not a digit", or the error code of a refusal."""
    answers, batch, where = [None] * len(uploads), [], []
    for index, data in enumerate(uploads):
        try:
            batch.append(preparation.prepare_upload(data))
            where.append(index)
        except exceptions.DigitInputError as error:
            answers[index] = error.code
    for start in range(0, len(batch), 500):
        probabilities = classifier_.predict(np.stack(batch[start : start + 500]))
        readings = reading.read_digits(probabilities, classifier_.metadata)
        for index, (digit, _) in zip(where[start : start + 500], readings):
            answers[index] = digit
    return answers


def digit_score(name, answers, labels, started):
    """Print the share read correctly and how many were refused as not a digit."""
    correct = sum(answer == label for answer, label in zip(answers, labels))
    refused = sum(answer is None for answer in answers)
    print(f"{name}: {correct / len(labels):.2%} correct ({len(labels) - correct} wrong of {len(labels)}, "
          f"{refused} refused as not a digit; {time.monotonic() - started:.0f} s)")
    return correct / len(labels)


def small_handwriting(side):
    """scikit-learn's real 8x8 handwritten digits (ink 0..16) as PNGs of side x side, and their labels."""
    from sklearn import datasets  # Benchmark and test tooling only.

    bunch = datasets.load_digits()
    uploads = []
    for pixels in bunch.images:
        image = Image.fromarray(np.rint(pixels * 255 / 16).astype(np.uint8))
        if side != 8:
            image = image.resize((side, side), Image.Resampling.BILINEAR)
        uploads.append(images.encode(image))
    return uploads, bunch.target.tolist()


def drawn_negatives(count, seed, templates):
    """Non-digit drawings as 400x400 PNG canvases (white pen on black, like the page), with their template names."""
    rng = np.random.default_rng(seed)
    names = sorted(templates)
    uploads, kinds = [], []
    for index in range(count):
        name = names[index % len(names)]
        strokes = negatives.distort([np.asarray(s, dtype=np.float64) for s in templates[name](rng)], rng)
        canvas = negatives.render(strokes, 400, rng)
        uploads.append(images.encode(Image.fromarray(np.rint(canvas * 255).astype(np.uint8))))
        kinds.append(name)
    return uploads, kinds


def negative_score(name, answers, kinds):
    """Print the share refused (as not a digit, or as no digit at all), overall and per template."""
    refused = [answer is None or isinstance(answer, str) for answer in answers]
    print(f"{name}: {np.mean(refused):.2%} refused ({len(answers) - sum(refused)} read as a digit of {len(answers)})")
    by_kind = collections.defaultdict(list)
    for kind, answer, was_refused in zip(kinds, answers, refused):
        by_kind[kind].append(None if was_refused else answer)
    worst = sorted(by_kind.items(), key=lambda item: -sum(a is not None for a in item[1]) / len(item[1]))
    print("  least refused: " + ", ".join(
        f"{kind} {sum(a is None for a in got) / len(got):.0%}"
        f" (as {collections.Counter(a for a in got if a is not None).most_common(1)[0][0]})"
        for kind, got in worst[:8] if any(a is not None for a in got)))
    return float(np.mean(refused))


def main():
    """Print every figure; the arguments choose the model and the sizes of the generated sets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="mnist-neural.h5", help="model file")
    parser.add_argument("--negatives", type=int, default=2000, help="non-digit drawings per template group")
    parser.add_argument("--realistic", type=int, default=2000, help="realistic digit uploads")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated sets (training used 1)")
    parser.add_argument("--skip-mnist", action="store_true", help="leave out MNIST's test set (the slow part)")
    parser.add_argument("--drawings-only", action="store_true", help="only the issue's drawings, written by hand")
    args = parser.parse_args()
    model = classifier.Classifier(args.model)
    print(f"{args.model}: rejection {model.metadata.get('rejection', {}).get('threshold', 'none')}")
    drawings = issue_drawings(args.seed)
    answers = read_all(model, [images.canvas_png(strokes) for strokes in drawings.values()])
    negative_score("The issue's drawings, written by hand as canvas strokes", answers, list(drawings))
    print("  " + ", ".join(f"{name}: {'refused' if answer is None else answer}"
                           for name, answer in zip(drawings, answers)))
    if args.drawings_only:
        return
    mnist = mnist_data.load_mnist(allow_download=False)

    if not args.skip_mnist:
        started = time.monotonic()
        answers = read_all(model, [images.png_bytes(digit) for digit in mnist.x_test])
        digit_score("MNIST test set as 28x28 PNGs", answers, mnist.y_test.tolist(), started)
    started = time.monotonic()
    uploads = synthetic.realistic_set(mnist.x_test, mnist.y_test, args.realistic, seed=args.seed)
    answers = read_all(model, [data for _, _, data in uploads])
    digit_score(f"Realistic uploads (seed {args.seed})", answers, [label for _, label, _ in uploads], started)
    for side in (8, 16):
        started = time.monotonic()
        uploads, labels = small_handwriting(side)
        digit_score(f"scikit-learn load_digits as {side}x{side} PNGs", read_all(model, uploads), labels, started)
    for group, templates in (("training templates", negatives.TRAINING), ("held-out templates", negatives.HELD_OUT)):
        uploads, kinds = drawn_negatives(args.negatives, [args.seed, len(templates)], templates)
        negative_score(f"Non-digits, {group}, 400x400 canvases (seed {args.seed})", read_all(model, uploads), kinds)


if __name__ == "__main__":
    main()
