"""Accuracy of the whole service pipeline (decode, prepare, model) on MNIST's test set and on realistic uploads.

    python3 -m benchmarks.accuracy [--model mnist-neural.h5] [--realistic 2000] [--seed 0]

MNIST's 10,000 test digits are sent as 28x28 PNGs; the realistic set is made from MNIST test digits by
testsupport/synthetic.py (canvas drawings, paper photos, scans, transparent PNGs, tiny images, 28x28 PNGs).
"""

import argparse
import collections
import time

from benchmarks import not_a_digit
from digits.serving import classifier
from digits.training import mnist_data
from testsupport import images, synthetic


def read_all(classifier_, uploads):
    """Predicted digit per upload; None where the service would refuse it (an error, or "not a digit")."""
    return [answer if isinstance(answer, int) else None for answer in not_a_digit.read_all(classifier_, uploads)]


def main():
    """Print accuracy on MNIST's test set and on the realistic set, by kind."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="mnist-neural.h5", help="model file")
    parser.add_argument("--realistic", type=int, default=2000, help="realistic images to make and read")
    parser.add_argument("--seed", type=int, default=0, help="seed of the realistic set")
    parser.add_argument("--skip-mnist", action="store_true", help="only the realistic set")
    args = parser.parse_args()
    mnist = mnist_data.load_mnist(allow_download=False)
    model = classifier.Classifier(args.model)

    if not args.skip_mnist:
        started = time.monotonic()
        predictions = read_all(model, [images.png_bytes(digit) for digit in mnist.x_test])
        correct = sum(p == label for p, label in zip(predictions, mnist.y_test))
        print(f"MNIST test set as 28x28 PNGs: {correct / len(predictions):.2%} ({len(predictions) - correct} wrong, "
              f"{time.monotonic() - started:.0f} s)")

    uploads = synthetic.realistic_set(mnist.x_test, mnist.y_test, args.realistic, seed=args.seed)
    predictions = read_all(model, [data for _, _, data in uploads])
    by_kind = collections.defaultdict(lambda: [0, 0, 0])
    for (kind, label, _), predicted in zip(uploads, predictions):
        by_kind[kind][0] += predicted == label
        by_kind[kind][1] += 1
        by_kind[kind][2] += predicted is None
    total = sum(v[0] for v in by_kind.values())
    print(f"Realistic set ({len(uploads)} images, seed {args.seed}): {total / len(uploads):.2%}")
    for kind, (correct, count, refused) in by_kind.items():
        print(f"  {kind:12s} {correct / count:7.2%} of {count}" + (f" ({refused} refused)" if refused else ""))


if __name__ == "__main__":
    main()
