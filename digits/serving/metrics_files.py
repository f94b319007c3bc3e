"""A dead worker's Prometheus files, folded into an archive so totals never go back, then removed.

In multiprocess mode each worker writes its counters to files named by its pid; a replaced worker's files
would stay forever (one set per restart). gunicorn's master calls `retire` when a worker exits: its counter
and histogram values are added to `<type>_archive.db`, which /metrics sums like any other file.
Imports nothing of the app, so the master never creates the app's metrics.
"""

import glob
import os

from prometheus_client import mmap_dict, multiprocess

ACCUMULATED = ("counter", "histogram")  # Types whose values add up over processes.


def retire(pid, path=None):
    """Fold process `pid`'s counters and histograms into the archive, then delete all its files."""
    path = path or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    multiprocess.mark_process_dead(pid, path)  # Its live gauges, if any.
    for kind in ACCUMULATED:
        for dead in glob.glob(os.path.join(path, f"{kind}_{pid}.db")):
            archive = mmap_dict.MmapedDict(os.path.join(path, f"{kind}_archive.db"))
            try:
                for key, value, timestamp, _ in mmap_dict.MmapedDict.read_all_values_from_file(dead):
                    total, _ = archive.read_value(key)
                    archive.write_value(key, total + value, timestamp)
            finally:
                archive.close()
            os.remove(dead)
    for other in glob.glob(os.path.join(path, f"*_{pid}.db")):
        os.remove(other)  # Gauges of other modes: a dead process's last value means nothing.
