"""Production settings: `gunicorn -c gunicorn.conf.py 'digits.service:create_app()'`.

The numbers in the comments come from benchmarks/load.py on a quiet 2-core machine (AMD EPYC, 24 GiB),
POST /upload of the 400x400 canvas PNG at 8 connections unless said otherwise. Command-line flags
(--bind, --workers, ...) and GUNICORN_CMD_ARGS override this file.
"""

import os
import shutil
import tempfile

# One thread per pool in each worker, set here, before a worker imports numpy or TensorFlow (both read
# these variables once, as they load). The workers already fill the cores; threads inside them only fight
# over the same cores. Measured: with the libraries' defaults, 80 requests/s instead of 241-285 (OpenBLAS's
# spinning threads make the preparation's small lstsq 5-20x slower); TensorFlow honours the variables
# (a 256-image batch uses 1.0 core instead of 1.8) and answers one image faster with one thread (0.52 ms,
# not 0.77). One worker with two TensorFlow threads instead of two workers: 97 requests/s.
for _variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                  "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

# Access logs off unless asked for: MNIST_ACCESS_LOG=true turns on the app's JSON line per request (its cost
# was within run-to-run noise), --access-logfile - gunicorn's own; a reverse proxy usually logs already.
os.environ.setdefault("MNIST_ACCESS_LOG", "false")


def _usable_cores():
    """Cores this process may use: its CPU affinity, capped by a cgroup (container) CPU quota."""
    cores = len(os.sched_getaffinity(0))
    try:
        with open("/sys/fs/cgroup/cpu.max") as limit:
            quota, period = limit.read().split()
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # No cgroup v2 limit to respect.
    return cores


# Loopback by default; MNIST_BIND=0.0.0.0:8000 (or --bind) when no reverse proxy sits on the same host.
bind = [os.environ.get("MNIST_BIND", "127.0.0.1:8000")]

# A request is CPU work under the GIL, so parallelism comes from processes: one per core (WEB_CONCURRENCY,
# gunicorn's usual variable, overrides). Measured, requests/s for canvas / 28x28 PNGs: 1 worker 131 / 324,
# 2 workers 241-285 / 493-695 (four runs), 3 workers 276 / 549, 4 workers 223 / 429 (and 6.5 s to start, not
# 2.8). Each worker holds its own TensorFlow and model: 576 MiB resident.
workers = int(os.environ.get("WEB_CONCURRENCY", _usable_cores()))

# Sync workers: one request at a time per process, all a CPU-bound request can use. Measured, gthread with
# 2 threads per worker: 257 requests/s, and 246 for 28x28 PNGs at 32 connections (sync: 573-717), with a
# canvas p99 of 245 ms at 32 connections (sync: 122-137).
worker_class = "sync"

# The model loads in each worker after the fork, never in the master: TensorFlow's thread pools do not
# survive fork(). Measured with --preload: every request hung until the timeout killed the worker.
preload_app = False

# A request takes milliseconds (a 16-megapixel PNG: 0.14 s); a worker silent for 30 s is stuck and is
# replaced. A worker's start (TensorFlow and the model) takes about 3 s.
timeout = 30

# On SIGTERM the workers stop accepting and finish the requests they hold (tested: uploads in flight at
# the signal are answered); 20 s is ample, and inside a typical 30 s container stop grace period.
graceful_timeout = 20

# No max_requests: a worker's memory stays flat (575.7 MiB before, 576.1 after 55,000 requests), so
# recycling would only cost a 3-second model load now and then.
max_requests = 0

# No runtime control socket: its default path is shared by every gunicorn of the same user, so a second
# server (a benchmark, a test) would take it over from this one; nothing here uses gunicornc.
control_socket_disable = True

# The heartbeat file in memory, not on a possibly slow container disk (gunicorn's own advice).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

_own_metrics_dir = None


def on_starting(server):
    """Give the workers a fresh shared folder for their Prometheus counters, so /metrics sums them all."""
    global _own_metrics_dir
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Set here in the master, once, so every worker (and a restarted one) inherits the same folder.
        _own_metrics_dir = tempfile.mkdtemp(prefix="digits-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir


def child_exit(server, worker):
    """Let Prometheus drop a dead worker's live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics folder this server made (never one the operator gave)."""
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
