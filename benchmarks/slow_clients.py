"""Slow clients against the production stack: `python3 -m benchmarks.slow_clients` (about 4 minutes).

    python3 -m benchmarks.slow_clients [--attackers 64] [--duration 60] [--worker-class CLASS] [--compare-s 10]

Starts gunicorn with gunicorn.conf.py on a free loopback port. Half the attackers trickle a request's
headers, half send whole headers then trickle the body, 1 byte a second each, reconnecting whenever the
server drops them, for --duration seconds; meanwhile one client uploads the canvas PNG again and again. It
reports the normal uploads' latency (all must be answered) and how long the server let attackers hold on.
Then, unless --compare-s is 0, the canvas at 8 connections under wrk (as benchmarks.load) with the sync
worker and with the configured one, alternately twice, so both are measured in the same conditions.
Only 127.0.0.1 is ever contacted.
"""

import argparse
import pathlib
import socket
import statistics
import sys
import tempfile
import threading
import time

import requests

from benchmarks import load
from testsupport.images import canvas_png
from testsupport.servers import Gunicorn

CANVAS = canvas_png()


def parse_args(argv=None):
    """Attack size and length, and which worker class to attack."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--attackers", type=int, default=64, help="trickling connections held at once")
    parser.add_argument("--duration", type=float, default=60, help="seconds the attack lasts")
    parser.add_argument("--worker-class", help="attack this worker class instead of gunicorn.conf.py's")
    parser.add_argument("--compare-s", type=float, default=10, help="seconds per wrk run in the comparison; 0 skips")
    return parser.parse_args(argv)


def trickle(port, kind, stop, held):
    """Hold a connection, sending one byte a second, reconnecting when dropped, until `stop` is set."""
    body = b"x" * 100_000
    head = (b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    while not stop.is_set():
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                if kind == "body":
                    sock.sendall(head)
                slow = head if kind == "headers" else body
                for byte in slow:
                    if stop.wait(1.0):
                        break
                    sock.sendall(bytes([byte]))
        except OSError:
            pass  # Dropped by the server (a 408, a reset): what we measure. Reconnect.
        held.append(time.monotonic() - started)
        stop.wait(0.05)


def normal_uploads(base_url, stop, latencies, failures):
    """Upload the canvas again and again, each with a 30 s timeout, noting latency or failure."""
    while not stop.is_set():
        started = time.perf_counter()
        try:
            answer = requests.post(base_url + "/upload", files={"file": ("canvas.png", CANVAS)}, timeout=30)
            if answer.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                failures.append(f"HTTP {answer.status_code}")
        except requests.RequestException as error:
            failures.append(type(error).__name__)
        stop.wait(0.1)


def attack(args, scratch):
    """Run the attack against one gunicorn; the normal uploads' figures and the attackers' hold times."""
    overrides = ["--worker-class", args.worker_class] if args.worker_class else []
    with Gunicorn(log_dir=scratch, overrides=overrides) as server:
        server.first_answer(CANVAS)
        stop, held, latencies, failures = threading.Event(), [], [], []
        attackers = [threading.Thread(target=trickle, args=(server.port, kind, stop, held), daemon=True)
                     for index in range(args.attackers) for kind in [("headers", "body")[index % 2]]]
        for thread in attackers:
            thread.start()
        time.sleep(2)  # Let every attacker connect first.
        client = threading.Thread(target=normal_uploads, args=(server.base_url, stop, latencies, failures))
        client.start()
        time.sleep(args.duration)
        stop.set()
        client.join()
        for thread in attackers:
            thread.join(timeout=10)
        worker_class = server.worker_class()
    return {"worker_class": worker_class, "latencies": latencies, "failures": failures, "held": held}


def percentile(values, fraction):
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def compare(args, scratch):
    """wrk, canvas, 8 connections: sync and the configured worker alternately, twice; p99 of each run."""
    wrk = load.require_wrk()
    image_path = pathlib.Path(scratch) / "canvas.png"
    image_path.write_bytes(CANVAS)
    script = pathlib.Path(scratch) / "canvas.lua"
    script.write_text(load.WRK_SCRIPT % {"image": image_path})
    results = {"sync": [], "configured": []}
    for _ in range(2):
        for name, overrides in [("sync", ["--worker-class", "sync"]), ("configured", [])]:
            with Gunicorn(log_dir=scratch, overrides=overrides) as server:
                server.first_answer(CANVAS)
                load.run_wrk(wrk, server.base_url, script, 8, 3)  # Warm-up.
                result = load.run_wrk(wrk, server.base_url, script, 8, args.compare_s)
                results[name].append(result)
                print(f"  {name:10s} c=8 {result['requests_per_s']:7.1f} req/s  p50 {result['p50_ms']:6.2f} ms  "
                      f"p99 {result['p99_ms']:6.2f} ms  errors {result['non_2xx'] + result['socket_errors']}",
                      file=sys.stderr)
    return results


def main(argv=None):
    """Attack, report, compare."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        print(f"{args.attackers} trickling connections for {args.duration:g} s ...", file=sys.stderr)
        result = attack(args, scratch)
        latencies, held = result["latencies"], result["held"]
        print(f"\n## Slow clients ({result['worker_class']}, {args.attackers} connections at 1 byte/s, "
              f"{args.duration:g} s)\n")
        print(f"- normal uploads answered: {len(latencies)}, failed: {len(result['failures'])} "
              f"{sorted(set(result['failures']))}")
        if latencies:
            print(f"- upload latency: p50 {statistics.median(latencies) * 1000:.0f} ms, "
                  f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
        if held:
            print(f"- attacker connections: {len(held)}, held at most {max(held):.1f} s "
                  f"(median {statistics.median(held):.1f} s)")
        if args.compare_s:
            print("\nComparing canvas p99 at 8 connections (sync, then the configured worker, twice) ...",
                  file=sys.stderr)
            runs = compare(args, scratch)
            print("\n## Canvas at 8 connections (wrk), same run\n")
            print("| worker | req/s | p50 (ms) | p99 (ms) |\n|---|---|---|---|")
            for name, results in runs.items():
                for run in results:
                    print(f"| {name} | {run['requests_per_s']:.1f} | {run['p50_ms']:.2f} | {run['p99_ms']:.2f} |")
    failed = not result["latencies"] or result["failures"] or percentile(result["latencies"], 0.99) >= 1.0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
