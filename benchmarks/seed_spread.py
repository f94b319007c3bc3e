"""How much test accuracy moves with the seed: `python3 -m benchmarks.seed_spread --seeds 2 3 [trainer flags]`.

Trains one model per seed with keras-mnist.py (into build/, never over mnist-neural.h5), each in its own
process, and collects what each trainer measured on MNIST's test set and on non-digits into
reports/seed_spread.json. Flags after the seeds go to every run (for example the committed model's recipe,
`--init-from build/base-10class.h5 --epochs 2 --learning-rate 5e-4`). Runs go in parallel, one per core.
"""

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys

from digits import PROJECT_ROOT

REPORT = PROJECT_ROOT / "reports" / "seed_spread.json"


def train(seed, extra):
    """One keras-mnist.py run with this seed; its metrics.json."""
    output = PROJECT_ROOT / "build" / f"seed-{seed}.h5"
    report_dir = PROJECT_ROOT / "build" / f"seed-{seed}-report"
    command = [sys.executable, "keras-mnist.py", "--seed", str(seed), "--output", str(output),
               "--report-dir", str(report_dir), *extra]
    subprocess.run(command, cwd=PROJECT_ROOT, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "CI": "1"})
    return json.loads((report_dir / "metrics.json").read_text())


def summary(seed, metrics):
    """What a user cares about from one run."""
    rejection = metrics.get("rejection", {})
    return {"seed": seed, "test_accuracy": metrics["test_accuracy"], "test_errors": metrics["test_errors"],
            "test_refused": metrics.get("test_refused"), "threshold": rejection.get("threshold"),
            "non_digits_refused": rejection.get("test_non_digits_refused"),
            "training_seconds": metrics["training_seconds"], "epochs_run": metrics["epochs_run"]}


def main():
    """Train the seeds, write and print the spread."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="seeds to train")
    args, extra = parser.parse_known_args()
    (PROJECT_ROOT / "build").mkdir(exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0))) as pool:
        trained = pool.map(lambda seed: train(seed, extra), args.seeds)
        runs = [summary(seed, metrics) for seed, metrics in zip(args.seeds, trained)]
    accuracies = [run["test_accuracy"] for run in runs]
    report = {"command_flags": extra, "runs": runs, "test_accuracy_min": min(accuracies),
              "test_accuracy_max": max(accuracies),
              "test_accuracy_stdev": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0}
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
