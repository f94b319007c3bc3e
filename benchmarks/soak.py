"""Load and soak test: many clients mixing good and bad requests against gunicorn, on loopback only.

    python3 -m benchmarks.soak                      # the long form: 5 minutes, 16 clients
    python3 -m benchmarks.soak --duration 20 --clients 8

It fails (exit 1) on any 5xx, any dropped connection, or worker memory that keeps growing. The run is
bounded: it stops by itself after --duration seconds. tests/test_production.py runs a short form in CI.
"""

import argparse
import collections
import dataclasses
import random
import statistics
import sys
import tempfile
import threading
import time

import requests
from PIL import Image

from testsupport import images
from testsupport.images import canvas_png
from testsupport.servers import Gunicorn, resident_mib

GOOD_SHARE = 0.7  # Seven requests in ten are good images; the rest are the bad inputs users send.


def request_mix():
    """(name, is_good, function(session, base_url)) for every kind of request in the mix."""
    canvas = canvas_png()
    photo = images.encode(images.drawn_digit(ink=30, paper=220).convert("RGB"), "JPEG", quality=80)

    def post(path, data, filename="digit.png"):
        return lambda session, url: session.post(url + path, files={"file": (filename, data)}, timeout=30)

    good = [("canvas upload", post("/upload", canvas)), ("photo predict", post("/predict", photo)),
            ("canvas uploads", post("/uploads", canvas))]
    bad = [("empty", post("/upload", b"")), ("text", post("/upload", b"hello" * 50, "a.txt")),
           ("truncated", post("/upload", canvas[:300])), ("bomb", post("/upload", images.png_bomb(13000, 13000))),
           ("no ink", post("/predict", images.encode(Image.new("L", (200, 200), 255)))),
           ("no file", lambda session, url: session.post(url + "/upload", data={"x": "1"}, timeout=30)),
           ("wrong path", lambda session, url: session.get(url + "/nothing/here", timeout=30))]
    return good, bad


@dataclasses.dataclass
class Tally:
    """What the clients saw, shared between their threads under a lock."""

    statuses: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    wrong_answers: int = 0
    dropped: list = dataclasses.field(default_factory=list)
    latencies: list = dataclasses.field(default_factory=list)  # (time since start, seconds)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


def client_loop(base_url, mix, until, started, tally, seed):
    """One client: requests back to back until the deadline, on one keep-alive session."""
    rng = random.Random(seed)
    good, bad = mix
    with requests.Session() as session:
        while time.monotonic() < until:
            name, send = rng.choice(good) if rng.random() < GOOD_SHARE else rng.choice(bad)
            sent = time.monotonic()
            try:
                response = send(session, base_url)
            except requests.RequestException as error:
                with tally.lock:
                    tally.dropped.append(f"{name}: {error}")
                continue
            elapsed = time.monotonic() - sent
            ok = response.headers.get("Content-Type", "").startswith("application/json")
            with tally.lock:
                tally.statuses[response.status_code] += 1
                tally.latencies.append((sent - started, elapsed))
                if not ok or (response.status_code == 200 and name.startswith("canvas") and response.json() != "7"):
                    tally.wrong_answers += 1


def soak(server, duration, clients, sample_every=2.0):
    """Drive the server for `duration` seconds; return a report dict (memory sampled per worker)."""
    mix = request_mix()
    tally = Tally()
    started = time.monotonic()
    until = started + duration
    threads = [threading.Thread(target=client_loop, args=(server.base_url, mix, until, started, tally, i))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    memory = collections.defaultdict(list)  # pid -> [(seconds, MiB)]
    while time.monotonic() < until:
        for pid in server.workers():
            try:
                memory[pid].append((time.monotonic() - started, resident_mib(pid)))
            except OSError:
                pass  # The worker went away between listing and reading.
        time.sleep(sample_every)
    for thread in threads:
        thread.join()
    return summarize(tally, memory, duration)


def summarize(tally, memory, duration):
    """Counts, latency in the first and last third of the run, and each worker's memory trend."""
    def percentile(values, share):
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else float("nan")

    first = [seconds for at, seconds in tally.latencies if at < duration / 3]
    last = [seconds for at, seconds in tally.latencies if at >= 2 * duration / 3]
    growth = {}
    for pid, samples in memory.items():
        settled = [(at, mib) for at, mib in samples if at >= duration / 3]  # After warm-up.
        if len(settled) >= 3:
            slope = statistics.linear_regression([at for at, _ in settled], [mib for _, mib in settled]).slope
            growth[pid] = {"start_mib": round(settled[0][1], 1), "end_mib": round(settled[-1][1], 1),
                           "mib_per_minute": round(slope * 60, 2)}
    return {
        "requests": sum(tally.statuses.values()),
        "requests_per_second": round(sum(tally.statuses.values()) / duration, 1),
        "statuses": dict(sorted(tally.statuses.items())),
        "server_errors": sum(count for status, count in tally.statuses.items() if status >= 500),
        "wrong_answers": tally.wrong_answers,
        "dropped": len(tally.dropped),
        "dropped_examples": tally.dropped[:5],
        "p50_ms_first_third": round(percentile(first, 0.5), 1), "p99_ms_first_third": round(percentile(first, 0.99), 1),
        "p50_ms_last_third": round(percentile(last, 0.5), 1), "p99_ms_last_third": round(percentile(last, 0.99), 1),
        "worker_memory": growth,
    }


def failures(report, max_growth_mib_per_minute=2.0):
    """What makes the run a failure, in words (empty when it passed)."""
    found = []
    if report["server_errors"]:
        found.append(f"{report['server_errors']} answers were 5xx")
    if report["dropped"]:
        found.append(f"{report['dropped']} requests lost their connection: {report['dropped_examples']}")
    if report["wrong_answers"]:
        found.append(f"{report['wrong_answers']} answers were not JSON or misread the test digit")
    for pid, memory in report["worker_memory"].items():
        if memory["mib_per_minute"] > max_growth_mib_per_minute and memory["end_mib"] - memory["start_mib"] > 20:
            found.append(f"worker {pid} grew {memory['mib_per_minute']} MiB/minute")
    return found


def main():
    """Start gunicorn with the production settings, soak it, print the report, exit 1 on failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--duration", type=float, default=300, help="seconds of load")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: gunicorn.conf.py)")
    args = parser.parse_args()
    overrides = ["--workers", str(args.workers)] if args.workers else []
    with tempfile.TemporaryDirectory() as scratch, Gunicorn(log_dir=scratch, overrides=overrides) as server:
        server.first_answer(canvas_png())
        report = soak(server, args.duration, args.clients)
    for key, value in report.items():
        print(f"{key}: {value}")
    problems = failures(report)
    print("FAILED: " + "; ".join(problems) if problems else "passed: no 5xx, no dropped connection, memory flat")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
