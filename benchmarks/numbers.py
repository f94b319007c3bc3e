"""Exact-number accuracy on generated numbers of 2 to 5 MNIST test digits, by kind and by length.

    python3 -m benchmarks.numbers [--count 400] [--seed 2026] [--single 2000] [--apart]

Each number goes through the service's own path (decoding, segmentation, the committed model); a number
counts as read only when every digit is found and read right. By default a fifth of neighbouring digits
touch or overlap a little; with `--apart` none do (some nearly touch). `--single` also reads that many
MNIST test digits one by one through the same path, to show single digits are not split or merged.
"""

import argparse
import collections
import time

import numpy as np

from digits import model_file
from digits.imaging import segmentation
from digits.serving import classifier
from digits.training import mnist_data
from testsupport import images, numbers


def read(model, data):
    """The text the service would answer for one upload ("" when it refuses it)."""
    try:
        digits = segmentation.prepare_number(data, classify=model.predict)
    except Exception:
        return ""
    probabilities = model.predict(np.stack([digit.image for digit in digits]))
    return "".join(str(int(np.argmax(row[:10]))) for row in probabilities)


def main():
    """Generate, read, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400, help="numbers to generate (default 400)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    parser.add_argument("--single", type=int, default=2000, help="single MNIST test digits to read (default 2000)")
    parser.add_argument("--apart", action="store_true", help="no touching neighbours (default: a fifth touch)")
    arguments = parser.parse_args()
    mnist = mnist_data.load_mnist(allow_download=False)
    model = classifier.Classifier(model_file.DEFAULT_PATH, threads=1)
    started = time.perf_counter()
    made = numbers.number_set(mnist.x_test, mnist.y_test, arguments.count, seed=arguments.seed,
                              touching=not arguments.apart)
    by_kind, by_length = collections.defaultdict(list), collections.defaultdict(list)
    for kind, text, data in made:
        correct = read(model, data) == text
        by_kind[kind].append(correct)
        by_length[len(text)].append(correct)
    seconds = time.perf_counter() - started
    print(f"{'set':<12} {'numbers':>8} {'exact':>8}")
    for name, results in [*sorted(by_kind.items()), *((f"{n} digits", r) for n, r in sorted(by_length.items()))]:
        print(f"{name:<12} {len(results):>8} {np.mean(results):>8.1%}")
    every = [c for results in by_kind.values() for c in results]
    print(f"{'all':<12} {len(every):>8} {np.mean(every):>8.1%}   ({seconds:.0f} s to make and read)")
    if arguments.single:
        chosen = np.random.default_rng(arguments.seed).choice(len(mnist.y_test), arguments.single, replace=False)
        texts = [read(model, images.png_bytes(mnist.x_test[i])) for i in chosen]
        right = np.mean([text == str(int(mnist.y_test[i])) for text, i in zip(texts, chosen)])
        split = sum(len(text) != 1 for text in texts)
        print(f"{'single MNIST':<12} {len(chosen):>8} {right:>8.1%}   ({split} not read as exactly one digit)")


if __name__ == "__main__":
    main()
