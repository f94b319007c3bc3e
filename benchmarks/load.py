"""Speed against the original, side by side in one run: `python3 -m benchmarks.load` (about 7 minutes; `--quick`: 2).

    python3 -m benchmarks.load [--quick] [--skip-original] [--skip-production] [--skip-constant]
                               [--workers N] [--worker-class sync|gthread] [--threads N] [--env K=V]

Each server is started on a free loopback port, timed from launch to its first answer, and driven with wrk
(POST /upload of the real Chromium canvas PNG, 400x400 RGBA as the browser sends it, of a 28x28 MNIST
PNG, read as it is, and of the canvas shrunk to 28x28, which goes through the whole recipe; at 1, 8 and 32
connections):
- digits: `gunicorn -w 2 app:app`, the headline, as the issue measures it, started in the project folder,
  where gunicorn also reads ./gunicorn.conf.py, as a user's would;
- original: `gunicorn -w 2 benchmarks.original_app:app`, the first version rebuilt (Keras MLP, predict()),
  with gunicorn's defaults (sync workers), as the original project, which had no config file, ran;
- production: `gunicorn -c gunicorn.conf.py 'digits.serving:create_app()'` (--workers etc. override it);
- constant: the production stack answering a constant (benchmarks/constant_app.py): the ceiling.
Then each stage of one request is timed in-process, fast paths and general paths. Prints a Markdown report
and writes it as JSON into benchmarks/results/.
"""

import argparse
import datetime
import io
import json
import os
import pathlib
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from PIL import Image

from digits import PROJECT_ROOT
from testsupport import images as images_
from testsupport import servers
from testsupport.images import canvas_png
from testsupport.servers import Gunicorn, resident_mib, thread_count

RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"
DIGITS_APP = servers.PRODUCTION_APP
HEADLINE_APP = "app:app"
ORIGINAL_APP = "benchmarks.original_app:app"
CONSTANT_APP = "benchmarks.constant_app:create_app()"
HEADLINE_WORKERS = 2  # `gunicorn -w 2`, for ours and the original alike.
CONNECTIONS = (1, 8, 32)
MNIST_TEST_INDEX = 0  # A 7, as the canvas.

# wrk runs this per connection: a fresh multipart boundary per request, as browsers send (Werkzeug compiles
# two regular expressions per boundary, so a fixed one would flatter us), and a JSON summary at the end.
WRK_SCRIPT = r"""
local file = io.open("%(image)s", "rb")
local image = file:read("*a")
file:close()
local counter = 0

request = function()
  counter = counter + 1
  local boundary = "----wrk" .. math.random(1000000000) .. "x" .. counter
  local body = "--" .. boundary .. "\r\n"
    .. 'Content-Disposition: form-data; name="file"; filename="digit.png"\r\n'
    .. "Content-Type: image/png\r\n\r\n" .. image .. "\r\n--" .. boundary .. "--\r\n"
  return wrk.format("POST", "/upload", {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "duration_s": %%.6f, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, '
    .. '"timeout": %%d, "p50_ms": %%.3f, "p90_ms": %%.3f, "p99_ms": %%.3f, "max_ms": %%.3f}\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""


def parse_args(argv=None):
    """The run's length and the gunicorn settings to try instead of gunicorn.conf.py's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of about 2 minutes")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 10, quick 3)")
    parser.add_argument("--connections", type=int, nargs="+", default=list(CONNECTIONS), help="wrk connections")
    parser.add_argument("--images", nargs="+", default=list(IMAGES), choices=list(IMAGES))
    parser.add_argument("--workers", type=int, help="override gunicorn.conf.py's worker count")
    parser.add_argument("--worker-class", help="override gunicorn.conf.py's worker class (sync, gthread)")
    parser.add_argument("--threads", type=int, help="threads per gthread worker")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment for the servers and the in-process timings (wins over gunicorn.conf.py)")
    parser.add_argument("--skip-constant", action="store_true", help="do not measure the constant app")
    parser.add_argument("--skip-original", action="store_true", help="do not measure the original app")
    parser.add_argument("--skip-production", action="store_true",
                        help="do not measure the production command (gunicorn.conf.py)")
    parser.add_argument("--skip-stages", action="store_true", help="do not time the stages in-process")
    parser.add_argument("--label", default="", help="a name for this run in the report and the JSON file")
    return parser.parse_args(argv)


# --- The two images -------------------------------------------------------------------------------------

def chromium_canvas_png():
    """The real canvas PNG Chromium sends (RGBA, alpha 255); a drawn stand-in if the shared copy is absent."""
    if images_.CHROMIUM_CANVAS.exists():
        return images_.CHROMIUM_CANVAS.read_bytes()
    print(f"warning: {images_.CHROMIUM_CANVAS} is missing; using a Pillow-drawn RGBA canvas", file=sys.stderr)
    return canvas_png()


def mnist_png():
    """An MNIST test digit as the 28x28 grayscale PNG a script would send."""
    from digits.training import mnist_data

    try:
        mnist = mnist_data.load_mnist(allow_download=False, log=lambda *args: None)
    except Exception as error:  # Any failure means the same: the local copy is missing.
        sys.exit(f"error: MNIST is not cached locally ({error}); run `python3 -m digits.training.mnist_data` once.")
    return images_.png_bytes(mnist.x_test[MNIST_TEST_INDEX])


def drawn_28x28_png():
    """The canvas shrunk to 28x28 by a script (Pillow's BOX filter): a digit 28x28 but not in MNIST's format
    (its ink's box is 18 pixels, not 19 or 20), so it goes through the whole recipe."""
    canvas = Image.open(io.BytesIO(chromium_canvas_png())).convert("L").resize((28, 28), Image.Resampling.BOX)
    return images_.encode(canvas)


# The uploads timed: each name's bytes, made when a run starts.
IMAGES = {"canvas": chromium_canvas_png, "mnist28": mnist_png, "drawn28": drawn_28x28_png}


def gunicorn_overrides(args):
    """The gunicorn flags this run sets instead of gunicorn.conf.py's."""
    overrides = []
    if args.workers:
        overrides += ["--workers", str(args.workers)]
    if args.worker_class:
        overrides += ["--worker-class", args.worker_class]
    if args.threads:
        overrides += ["--threads", str(args.threads)]
    return overrides


# --- wrk ------------------------------------------------------------------------------------------------

def require_wrk():
    """The wrk executable, or a clear way out."""
    path = shutil.which("wrk")
    if not path:
        sys.exit("error: wrk is not installed; install it with `apt-get install wrk` (Debian/Ubuntu) and rerun.")
    return path


def run_wrk(wrk, base_url, script, connections, duration):
    """One closed-loop wrk run; its summary as a dict."""
    # One wrk thread: it drives thousands of requests/s, and a second would take CPU from the server.
    command = [wrk, "-t1", f"-c{connections}", f"-d{round(duration)}s", "--timeout", "10s", "-s", str(script),
               base_url + "/upload"]
    output = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60).stdout
    found = re.search(r"^WRK_JSON (.*)$", output, re.MULTILINE)
    if not found:
        raise RuntimeError(f"wrk gave no summary:\n{output}")
    result = json.loads(found.group(1))
    result["connections"] = connections
    result["requests_per_s"] = result["requests"] / result["duration_s"]
    result["socket_errors"] = result["connect"] + result["read"] + result["write"] + result["timeout"]
    result["non_2xx"] = result["status"]
    return result


def load_server(app, name, images, args, wrk, scratch, config=servers.GUNICORN_CONFIG, overrides=None,
                check_answer=True):
    """Start `app` under gunicorn, time start-up, run wrk over images x connections, note memory."""
    overrides = gunicorn_overrides(args) if overrides is None else overrides
    with Gunicorn(app, log_dir=scratch, overrides=overrides, config=config) as server:
        startup_s, answer = server.first_answer(images["canvas"])
        if check_answer and answer != "7":
            raise RuntimeError(f"{name} answered {answer!r} for the canvas 7; the benchmark images are wrong")
        scripts = {}
        for image_name in args.images:
            image_path = pathlib.Path(scratch) / f"{image_name}.png"
            image_path.write_bytes(images[image_name])
            scripts[image_name] = pathlib.Path(scratch) / f"{image_name}.lua"
            scripts[image_name].write_text(WRK_SCRIPT % {"image": image_path})
        # Warm-up: every worker has loaded its model and answered before anything is measured.
        run_wrk(wrk, server.base_url, scripts[args.images[0]], max(args.connections), args.warm_up)
        workers = server.workers()
        memory = {"after_warm_up": [resident_mib(pid) for pid in workers]}
        runs = []
        for image_name in args.images:
            for connections in args.connections:
                cpu_before = cpu_seconds([server.process.pid, *workers])
                result = run_wrk(wrk, server.base_url, scripts[image_name], connections, args.duration)
                result["cpu_ms_per_request"] = (cpu_seconds([server.process.pid, *workers]) - cpu_before) * 1000 / max(
                    1, result["requests"])
                runs.append({"app": name, "image": image_name, **result})
                print(f"  {name:8s} {image_name:8s} c={connections:<3d} {result['requests_per_s']:8.1f} req/s  "
                      f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms  "
                      f"server CPU {result['cpu_ms_per_request']:6.2f} ms/request  "
                      f"errors {result['non_2xx'] + result['socket_errors']}", file=sys.stderr)
        memory["after_load"] = [resident_mib(pid) for pid in workers]
        return {"app": name, "command": " ".join(server.command[server.command.index("gunicorn"):]),
                "startup_s": startup_s, "workers": len(workers), "worker_class": server.worker_class(),
                "threads_per_worker": [thread_count(pid) for pid in workers], "memory_mib": memory, "runs": runs}


def cpu_seconds(pids):
    """User + system CPU seconds the processes have used: unlike requests/s, barely moved by others' jobs."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


# --- In-process stage timings ---------------------------------------------------------------------------

def time_stages(images, repeats):
    """Median and p99 ms of decode, normalise, predict and the whole test-client request, per image."""
    from unittest import mock

    from digits.imaging import decoding, preparation
    from digits.serving import classifier, service

    app = service.create_app({"TESTING": True, "ACCESS_LOG": False})
    model = classifier.get(app)
    client = app.test_client()
    results = {}
    for image_name, data in images.items():
        gray = decoding.decode_grayscale(data)
        digit = preparation.normalize_digit(gray)

        def request(data=data):
            response = client.post("/upload", data={"file": (io.BytesIO(data), "digit.png")})
            if response.status_code != 200:
                raise RuntimeError(f"the test client got {response.status_code}: {response.data[:200]!r}")

        def general_decode(data=data):
            with mock.patch.object(decoding, "_decode_canvas", lambda *args: None):
                return decoding.decode_grayscale(data)

        def general_normalize(gray=gray):
            ink = preparation.flatten_background(preparation.ink_positive(gray))
            return preparation.fit_and_center(ink, preparation.digit_mask(ink))

        stages = {
            "decode_grayscale": lambda data=data: decoding.decode_grayscale(data),
            "decode_grayscale, general path (Pillow)": general_decode,
            "normalize_digit": lambda gray=gray: preparation.normalize_digit(gray),
            "normalize_digit, general path": general_normalize,
            "Classifier.predict (1 image)": lambda digit=digit: model.predict(digit[None]),
            "whole request (test client)": request,
        }
        results[image_name] = {stage: _time(function, repeats) for stage, function in stages.items()}
    return results


def _time(function, repeats):
    """Median and 99th percentile of `repeats` calls, in ms, after a few unmeasured ones; and the median CPU time.

    CPU time (this thread's) is what a call costs whoever else shares the machine; wall time adds the waits.
    """
    for _ in range(max(5, repeats // 20)):
        function()
    samples, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.thread_time()
        function()
        cpu.append((time.thread_time() - started_cpu) * 1000)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"median_ms": statistics.median(samples), "p99_ms": samples[min(len(samples) - 1, int(0.99 * len(samples)))],
            "cpu_median_ms": statistics.median(cpu)}


# --- Conditions and report ------------------------------------------------------------------------------

def cpu_busy(seconds=1.0):
    """The share of all cores busy over `seconds`, from /proc/stat: other load spoils the numbers."""
    def sample():
        values = [int(v) for v in open("/proc/stat").readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    total_before, idle_before = sample()
    time.sleep(seconds)
    total_after, idle_after = sample()
    return 1 - (idle_after - idle_before) / max(1, total_after - total_before)


def conditions(args):
    """Machine, software and settings of this run."""
    import gunicorn
    import numpy
    import onnxruntime

    from digits.imaging import canvas_png

    with open("/proc/cpuinfo") as cpuinfo:
        cpu_model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    memory_kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    return {
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": f"{len(os.sched_getaffinity(0))} cores, {cpu_model}",
        "memory_gib": round(memory_kib / 2**20, 1),
        "python": platform.python_version(),
        "compiled_png_rows": canvas_png.is_compiled(),  # Ours serves from this checkout: the same module, or none.
        "versions": {"gunicorn": gunicorn.__version__, "onnxruntime": onnxruntime.__version__,
                     "numpy": numpy.__version__},
        "thread_env": {name: os.environ.get(name) for name in
                       ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
        "duration_s": args.duration, "label": args.label, "overrides": {
            "workers": args.workers, "worker_class": args.worker_class, "threads": args.threads, "env": args.env},
    }


def markdown(report):
    """The report as Markdown tables."""
    c = report["conditions"]
    servers = {server["app"]: server for server in report["servers"]}
    digits = servers.get("digits") or next(iter(servers.values()))
    lines = [f"## Load benchmark {c['label']}".rstrip(), "",
             f"{c['time']}; {c['cpu']}, {c['memory_gib']} GiB; Python {c['python']}, "
             f"canvas rows {'compiled' if c.get('compiled_png_rows') else 'in NumPy'}, "
             f"gunicorn {c['versions']['gunicorn']}, ONNX Runtime {c['versions']['onnxruntime']}; "
             f"{digits['workers']} {digits['worker_class']} workers"
             f"{' x ' + str(c['overrides']['threads']) + ' threads' if c['overrides']['threads'] else ''} "
             f"(OS threads per worker process: {digits['threads_per_worker']}); "
             f"thread variables {c['thread_env']}; wrk -t1, {c['duration_s']:g} s per row, closed loop; "
             f"CPU busy before the run: {report['cpu_busy_before']:.0%}, after: {report['cpu_busy_after']:.0%}.", "",
             "| image | app | conns | req/s | p50 ms | p99 ms | non-2xx | socket errors | share of ceiling "
             "| server CPU ms/request |",
             "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    ceiling = {(run["image"], run["connections"]): run["requests_per_s"]
               for run in servers.get("constant", {"runs": []})["runs"]}
    for server in report["servers"]:
        for run in server["runs"]:
            top = ceiling.get((run["image"], run["connections"]))
            share = f"{run['requests_per_s'] / top:.0%}" if top and server["app"] != "constant" else ""
            lines.append(f"| {run['image']} | {server['app']} | {run['connections']} | {run['requests_per_s']:.1f} | "
                         f"{run['p50_ms']:.2f} | {run['p99_ms']:.2f} | {run['non_2xx']} | "
                         f"{run['socket_errors']} | {share} | {run.get('cpu_ms_per_request', 0):.2f} |")
    original = {(run["image"], run["connections"]): run for run in servers.get("original", {"runs": []})["runs"]}
    if original:
        lines += ["", "Against the original, same run, same `gunicorn -w 2`:", "",
                  "| image | conns | digits req/s | original req/s | ratio | digits p99 ms | original p99 ms "
                  "| CPU per request, original / digits |",
                  "|---|--:|--:|--:|--:|--:|--:|--:|"]
        for run in digits["runs"]:
            before = original.get((run["image"], run["connections"]))
            if before:
                ratio = run["requests_per_s"] / before["requests_per_s"]
                lines.append(f"| {run['image']} | {run['connections']} | {run['requests_per_s']:.1f} | "
                             f"{before['requests_per_s']:.1f} | {ratio:.1f}x | "
                             f"{run['p99_ms']:.2f} | {before['p99_ms']:.2f} | "
                             f"{before['cpu_ms_per_request'] / max(run['cpu_ms_per_request'], 1e-9):.1f}x |")
    lines += ["", "| app | command | start-up to first answer | RSS per worker after warm-up (MiB) "
              "| after the load (MiB) |",
              "|---|---|--:|--:|--:|"]
    for server in report["servers"]:
        memory = server["memory_mib"]
        lines.append(f"| {server['app']} | `{server.get('command', '')}` | {server['startup_s']:.2f} s | "
                     f"{', '.join(f'{m:.0f}' for m in memory['after_warm_up'])} | "
                     f"{', '.join(f'{m:.0f}' for m in memory['after_load'])} |")
    if report.get("stages"):
        lines += ["", f"In-process, one image at a time, {report['stage_repeats']} repeats:", "",
                  "| image | stage | median ms | p99 ms | CPU median ms |", "|---|---|--:|--:|--:|"]
        for image_name, stages in report["stages"].items():
            for stage, timing in stages.items():
                lines.append(f"| {image_name} | {stage} | {timing['median_ms']:.3f} | {timing['p99_ms']:.3f} | "
                             f"{timing['cpu_median_ms']:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    """Measure, print the Markdown report, save the JSON."""
    args = parse_args(argv)
    args.duration = args.duration or (3 if args.quick else 10)
    args.warm_up = 1 if args.quick else 3
    wrk = require_wrk()
    for assignment in args.env:
        name, _, value = assignment.partition("=")
        os.environ[name] = value
    # The canvas always: every server's start-up is timed to its first canvas answer, whatever is measured.
    images = {name: IMAGES[name]() for name in dict.fromkeys(["canvas", *args.images])}
    report = {"conditions": conditions(args), "cpu_busy_before": cpu_busy(), "servers": []}
    if report["cpu_busy_before"] > 0.1:
        print(f"warning: the CPUs are {report['cpu_busy_before']:.0%} busy before the run; numbers will be low",
              file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="digits-load-") as scratch:
        headline = ["--workers", str(HEADLINE_WORKERS)]
        report["servers"].append(load_server(HEADLINE_APP, "digits", images, args, wrk, scratch, config=None,
                                             overrides=headline))
        if not args.skip_original:
            # The original had no gunicorn.conf.py: gunicorn's defaults (sync workers). Ours would put it under
            # our gevent worker, where concurrent Keras predict() calls in one thread fail with 500s.
            defaults = pathlib.Path(scratch) / "gunicorn-defaults.conf.py"
            defaults.write_text("# gunicorn's defaults, as the original project ran with no config file.\n")
            report["servers"].append(load_server(ORIGINAL_APP, "original", images, args, wrk, scratch,
                                                 config=defaults, overrides=headline, check_answer=False))
        if not args.skip_production:
            report["servers"].append(load_server(DIGITS_APP, "production", images, args, wrk, scratch))
        if not args.skip_constant:
            report["servers"].append(load_server(CONSTANT_APP, "constant", images, args, wrk, scratch))
    if not args.skip_stages:
        report["stage_repeats"] = 100 if args.quick else 500
        report["stages"] = time_stages({name: images[name] for name in args.images}, report["stage_repeats"])
    report["cpu_busy_after"] = cpu_busy()
    print(markdown(report))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"load-{stamp}{'-' + args.label if args.label else ''}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"\nJSON: {path.relative_to(PROJECT_ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
