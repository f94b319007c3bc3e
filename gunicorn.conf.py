"""Production settings: `gunicorn -c gunicorn.conf.py 'digits.serving:create_app()'`.

Each setting says why; the measurements behind them are in the README's Speed section and in the dated
results of `python3 -m benchmarks.load`. Command-line flags (--bind, --workers, ...) and GUNICORN_CMD_ARGS
override this file.
"""

import os
import shutil
import sys
import tempfile

# Access logs off unless asked for: MNIST_ACCESS_LOG=true turns on the app's JSON line per request, and
# --access-logfile - gunicorn's own; a reverse proxy usually logs already.
os.environ.setdefault("MNIST_ACCESS_LOG", "false")


def _usable_cores():
    """Cores this process may use: its CPU affinity, capped by a cgroup (container) CPU quota."""
    cores = len(os.sched_getaffinity(0))
    # cgroup v2 holds "quota period" in one file; v1 in two, with -1 for no quota.
    for quota_file, period_file in (("cpu.max", "cpu.max"), ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us")):
        try:
            with open(f"/sys/fs/cgroup/{quota_file}") as limit:
                quota = limit.read().split()[0]
            with open(f"/sys/fs/cgroup/{period_file}") as limit:
                period = int(limit.read().split()[-1])
        except (OSError, IndexError, ValueError):
            continue  # Not this cgroup version here.
        if quota not in ("max", "-1"):
            cores = min(cores, max(1, int(quota) // period))
        break
    return cores


# Loopback by default; MNIST_BIND=0.0.0.0:8000 (or --bind) to listen on other interfaces. PORT, as container
# platforms set it, means every interface on that port (the image sets PORT=8000).
_port = os.environ.get("PORT")
bind = [os.environ.get("MNIST_BIND") or (f"0.0.0.0:{_port}" if _port else "127.0.0.1:8000")]

# A request is CPU work under the GIL, so parallelism comes from processes: one per usable core
# (WEB_CONCURRENCY, gunicorn's usual variable, overrides). More workers than cores only queue on the cores.
workers = int(os.environ.get("WEB_CONCURRENCY", _usable_cores()))

# gevent workers (digits/serving/worker.py): a connection costs a greenlet, not the process, so clients that
# trickle their request hold nothing a normal upload needs; each request must arrive whole within a deadline
# (408 otherwise), and gunicorn's own refusals are JSON. CPU work still runs one request at a time per
# process, and the app caps how many may wait for it (503 with Retry-After beyond).
worker_class = "digits.serving.worker.DigitsWorker"

# Connections one worker holds at once (reading, waiting or answering). Each costs a greenlet and at most
# the form parser's in-memory buffer (larger uploads spool to a temporary file).
worker_connections = 256

# One request per connection, as the sync worker did: a kept-alive connection would stay with the worker
# that accepted it, however busy, while a fresh one goes to a worker free to accept it. (The Angular client
# sends one request per drawing anyway.)
keepalive = 0

# The app and its model load in each worker after the fork, never in the master: a preloaded app would be
# built before on_starting (below) has checked the model file and set the workers' shared metrics folder.
# ONNX Runtime loads the model in a fraction of a second, so preloading would gain little.
preload_app = False

# A request takes milliseconds; a worker silent for 30 s is stuck and is replaced.
timeout = 30

# On SIGTERM the workers stop accepting and finish the requests they hold; 20 s is ample, and inside a
# typical 30 s container stop grace period.
graceful_timeout = 20

# No recycling: a worker's memory stays flat under load (benchmarks/soak.py checks it), so restarting
# workers would only cost a model load now and then.
max_requests = 0

# No runtime control socket: its default path is shared by every gunicorn of the same user, so a second
# server (a benchmark, a test) would take it over from this one; nothing here uses gunicornc.
control_socket_disable = True

# The heartbeat file in memory, not on a possibly slow container disk (gunicorn's own advice).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

_own_metrics_dir = None


def on_starting(server):
    """Refuse to start, in one line and with exit status 1, when the model file is missing or unreadable.

    Checked here in the master, before any worker boots: a worker that fails to load it would make gunicorn
    print every worker's traceback and exit 3.
    """
    global _own_metrics_dir
    from digits import model_file

    try:
        model_file.check(os.environ.get("MNIST_MODEL_PATH", model_file.DEFAULT_PATH))
    except model_file.ModelLoadError as error:
        print(f"error: cannot start: {error}", file=sys.stderr, flush=True)
        os._exit(1)  # Not sys.exit: gunicorn would log the SystemExit with its traceback.
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # A fresh shared folder for the workers' Prometheus counters, so /metrics sums them all. Set here in
        # the master, once, so every worker (and a restarted one) inherits the same folder.
        _own_metrics_dir = tempfile.mkdtemp(prefix="digits-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir


def child_exit(server, worker):
    """Fold a dead worker's metric files into the archive (totals never go back) and remove them."""
    from digits.serving import metrics_files

    metrics_files.retire(worker.pid)


def on_exit(server):
    """Remove the metrics folder this server made (never one the operator gave)."""
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
