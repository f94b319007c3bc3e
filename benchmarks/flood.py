"""A flood of costly uploads against app.py or gunicorn: `python3 -m benchmarks.flood` (about 2 minutes).

    python3 -m benchmarks.flood [--server app|gunicorn] [--clients 32] [--duration 20] [--kind costly|many-large]

--clients threads each post, back to back, for --duration seconds: `costly` is one 5000x5000 RGBA PNG (the
dearest upload the limits let through), `many-large` 16 files of a 4000x4000 PNG in one request (refused
by the request's pixel budget). A separate client uploads the canvas meanwhile. Reports the answers by
status, their latency, the canvas uploads' latency, and the server's peak resident memory (all its
processes together, sampled every 0.1 s). Only 127.0.0.1 is ever contacted.
"""

import argparse
import collections
import statistics
import sys
import tempfile
import threading
import time

import requests

from digits import PROJECT_ROOT
from testsupport import images, servers

CANVAS = images.canvas_png()


def parse_args(argv=None):
    """Which server, how many clients, how long, which upload."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--server", choices=["app", "gunicorn"], default="app")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--kind", choices=["costly", "many-large"], default="costly")
    return parser.parse_args(argv)


def flood_files(kind):
    """The files of one flood request."""
    if kind == "costly":
        return [images.encode(images.drawn_digit(side=5000, mode="RGBA"))]
    return [images.encode(images.drawn_digit(side=4000))] * 16


def poster(base_url, files, path, stop, answers):
    """Post `files` to `path` back to back until `stop`; note (status or error, seconds)."""
    while not stop.is_set():
        started = time.perf_counter()
        try:
            response = requests.post(base_url + path, timeout=60,
                                     files=[("file", (f"{index}.png", data)) for index, data in enumerate(files)])
            outcome = response.status_code
        except requests.RequestException as error:
            outcome = type(error).__name__
        answers.append((outcome, time.perf_counter() - started))


def sample_memory(pid, stop, peak):
    """Keep the peak of the resident memory of `pid` and its children, in MiB."""
    while not stop.wait(0.1):
        total = 0.0
        for process in [pid, *servers.children(pid)]:
            try:
                total += servers.resident_mib(process)
            except (OSError, StopIteration):
                pass
        peak[0] = max(peak[0], total)


def flood(args, base_url, pid):
    """Run the flood and the canvas client against a started server; the figures."""
    files = flood_files(args.kind)
    stop, answers, canvas, peak = threading.Event(), [], [], [0.0]
    path = "/upload" if len(files) == 1 else "/predict"
    threads = [threading.Thread(target=poster, args=(base_url, files, path, stop, answers))
               for _ in range(args.clients)]
    threads.append(threading.Thread(target=poster, args=(base_url, [CANVAS], "/upload", stop, canvas)))
    threads.append(threading.Thread(target=sample_memory, args=(pid, stop, peak)))
    sample_memory_before = servers.resident_mib(pid) + sum(servers.resident_mib(c) for c in servers.children(pid))
    for thread in threads:
        thread.start()
    time.sleep(args.duration)
    stop.set()
    for thread in threads:
        thread.join()
    return {"answers": answers, "canvas": canvas, "peak_mib": peak[0], "before_mib": sample_memory_before,
            "request_bytes": sum(len(data) for data in files)}


def summary(name, answers):
    """One line: counts by outcome, latency p50/p99/max."""
    counts = collections.Counter(outcome for outcome, _ in answers)
    seconds = sorted(seconds for _, seconds in answers)
    if not seconds:
        return f"- {name}: none"
    p99 = seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))]
    return (f"- {name}: {dict(counts)}; latency p50 {statistics.median(seconds) * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {seconds[-1] * 1000:.0f} ms")


def main(argv=None):
    """Start the server, flood it, report."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        if args.server == "app":
            port = servers.free_port()
            command = [sys.executable, str(PROJECT_ROOT / "app.py"), "--port", str(port)]
            with servers.running_server(command, port, log_path=f"{scratch}/app.log") as (base_url, process):
                result = flood(args, base_url, process.pid)
        else:
            with servers.Gunicorn(log_dir=scratch) as server:
                server.wait_until_ready()
                result = flood(args, server.base_url, server.process.pid)
    print(f"\n## Flood: {args.server}, {args.clients} clients x {args.duration:g} s, {args.kind} "
          f"({result['request_bytes'] / 1024:.0f} KB per request)\n")
    print(summary("flood requests", result["answers"]))
    print(summary("canvas uploads alongside", result["canvas"]))
    print(f"- resident memory, all server processes: {result['before_mib']:.0f} MiB before, "
          f"peak {result['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
