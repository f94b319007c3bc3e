"""The issue's 27 drawings through `/upload`, as the service reads them (numbers included), over seeds.

    python3 -m benchmarks.issue_drawings [--model mnist-neural.h5] [--seeds 0 1 2 3 4 5 6 7 8 9]

The drawings are `benchmarks.not_a_digit.issue_drawings` (written out by hand as canvas strokes,
independently of the training generator); only the six random scribbles change with the seed. Each is posted
as a 400x400 canvas PNG to the app's test client; a 422 counts as refused.
"""

import argparse
import io

from benchmarks import not_a_digit
from digits.serving import service
from testsupport import images


def refusals(client, seed):
    """(refused, what the service answered for each drawing it did not refuse) for one seed's drawings."""
    answered = {}
    for name, strokes in not_a_digit.issue_drawings(seed).items():
        response = client.post("/upload", data={"file": (io.BytesIO(images.canvas_png(strokes)), "canvas.png")},
                               content_type="multipart/form-data")
        if response.status_code != 422:
            answered[name] = response.get_json()
    return 27 - len(answered), answered


def main():
    """Print each seed's count of refused drawings and what was read instead, then the total."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="mnist-neural.h5", help="model file")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)), help="seeds of the scribbles")
    args = parser.parse_args()
    client = service.create_app({"TESTING": True, "MODEL_PATH": args.model, "ACCESS_LOG": False}).test_client()
    total = 0
    for seed in args.seeds:
        refused, answered = refusals(client, seed)
        total += refused
        print(f"seed {seed}: {refused}/27 refused" + (f"; read: {answered}" if answered else ""))
    print(f"all: {total}/{27 * len(args.seeds)} refused")


if __name__ == "__main__":
    main()
