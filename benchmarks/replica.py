"""What one replica needs, for Kubernetes requests and limits: `python3 -m benchmarks.replica [--seconds 20]`.

Starts gunicorn with gunicorn.conf.py and one worker on a free loopback port, and reports the master's and
the worker's resident memory idle and at peak under load (client threads posting the canvas to /upload
without pause), the CPU the replica used (cores busy), and the requests answered per second.
"""

import argparse
import concurrent.futures
import json
import os
import tempfile
import threading
import time

from testsupport import http, images, servers


def cpu_seconds(pid):
    """User plus system CPU seconds a process has used (utime + stime in /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(seconds, clients):
    """Start a one-worker replica, load it for `seconds` with `clients` threads; the numbers as a dict."""
    data = images.CHROMIUM_CANVAS.read_bytes()
    with tempfile.TemporaryDirectory() as scratch, \
            servers.Gunicorn(log_dir=scratch, overrides=["--workers", "1"]) as server:
        started_in, _ = server.first_answer(data)
        master, (worker,) = server.process.pid, server.workers()
        idle = {"master_mib": servers.resident_mib(master), "worker_mib": servers.resident_mib(worker)}
        stop, answered, peak = threading.Event(), [0], [idle["worker_mib"]]

        def client():
            while not stop.is_set():
                http.post_upload(server.base_url, data)
                answered[0] += 1  # Under the GIL; a lost increment only understates.

        cpu_before, began = cpu_seconds(master) + cpu_seconds(worker), time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            futures = [pool.submit(client) for _ in range(clients)]
            while time.monotonic() - began < seconds:
                peak[0] = max(peak[0], servers.resident_mib(worker))
                time.sleep(0.2)
            stop.set()
            for future in futures:
                future.result(timeout=60)
        wall = time.monotonic() - began
        cpu = cpu_seconds(master) + cpu_seconds(worker) - cpu_before
    return {"start_to_first_answer_s": round(started_in, 1), "idle": idle,
            "worker_peak_mib": round(peak[0], 1), "cores_busy": round(cpu / wall, 2),
            "requests_per_s": round(answered[0] / wall, 1), "seconds": round(wall, 1), "clients": clients,
            "cpu_count": os.cpu_count()}


def main(argv=None):
    """Measure and print the numbers as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="seconds of load (default %(default)s)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (default %(default)s)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.seconds, args.clients), indent=2))


if __name__ == "__main__":
    main()
