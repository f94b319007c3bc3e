"""The container image: built from Debian packages with deploy/container/build.sh, run with podman, reads a digit.

Slow the first time (a Debian root file system and the requirements from PyPI); later builds reuse podman's
layers. Skipped where podman cannot run containers (not installed, not root, no mmdebstrap for the base).
"""

import os
import re
import shutil
import subprocess
import time
import urllib.error

import pytest

from digits import PROJECT_ROOT
from testsupport import http, images, servers

IMAGE = "localhost/mnist-digits:test"
BUILD = PROJECT_ROOT / "deploy" / "container" / "build.sh"


def _why_podman_cannot_run():
    """None when podman can build and run here, else the reason."""
    missing = [tool for tool in ("podman", "runc", "mmdebstrap") if not shutil.which(tool)]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install -y podman runc buildah mmdebstrap)"
    if os.geteuid() != 0:
        return "the image is built and run as root (mmdebstrap and podman's chroot isolation)"
    try:
        info = subprocess.run(["podman", "--runtime", "runc", "info"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "`podman info` did not answer in 60 s"
    if info.returncode != 0:
        return f"podman cannot run here: {info.stderr.strip()[-300:]}"
    return None


pytestmark = pytest.mark.skipif(bool(reason := _why_podman_cannot_run()), reason=f"container test skipped: {reason}")


@pytest.fixture(scope="module")
def image():
    """The image, built by the script users run."""
    started = time.perf_counter()
    built = subprocess.run([str(BUILD), IMAGE], capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    size = subprocess.run(["podman", "image", "inspect", IMAGE, "--format", "{{.Size}}"], capture_output=True,
                          text=True, check=True).stdout
    print(f"\nbuilt {IMAGE} in {time.perf_counter() - started:.0f} s: {int(size) / 1e6:.0f} MB")
    return IMAGE


@pytest.fixture()
def container(image):
    """The image on a free loopback port, with one CPU's quota and a read-only root file system (writable
    tmpfs at /tmp, /run and /dev/shm), as the Kubernetes Deployment runs it; yields (base URL, name, launch time)."""
    port = servers.free_port()
    name = f"mnist-digits-test-{port}"
    launched = time.perf_counter()
    subprocess.run(["podman", "--runtime", "runc", "run", "--detach", "--name", name, "--network", "host",
                    "--ulimit", "nofile=1024:20000", "--ulimit", "nproc=4096:4096", "--cpus", "1", "--read-only",
                    "--env", f"MNIST_BIND=127.0.0.1:{port}", image], check=True, capture_output=True, timeout=120)
    try:
        yield f"http://127.0.0.1:{port}", name, launched
    finally:
        subprocess.run(["podman", "rm", "--force", "--time", "30", name], capture_output=True, timeout=120)


def first_answer(base_url, name, launched, timeout=180):
    """Seconds from launch to the first /upload answer, and that answer."""
    data = images.CHROMIUM_CANVAS.read_bytes()
    while time.perf_counter() - launched < timeout:
        try:
            answer = http.post_upload(base_url, data, timeout=60)
            return time.perf_counter() - launched, answer
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.25)
    logs = subprocess.run(["podman", "logs", name], capture_output=True, text=True).stderr
    raise AssertionError(f"no answer after {timeout} s:\n{logs[-3000:]}")


def test_the_image_reads_a_digit_as_a_non_root_user_read_only_with_workers_from_the_cpu_quota(container):
    base_url, name, launched = container
    seconds, answer = first_answer(base_url, name, launched)
    print(f"\nlaunch to first answer: {seconds:.1f} s")
    assert answer == "7"
    user = subprocess.run(["podman", "exec", name, "id", "-u"], capture_output=True, text=True, check=True).stdout
    assert int(user) != 0
    assert subprocess.run(["podman", "healthcheck", "run", name], capture_output=True).returncode == 0
    logs = subprocess.run(["podman", "logs", name], capture_output=True, text=True)
    assert len(re.findall(r"Booting worker with pid", logs.stdout + logs.stderr)) == 1  # --cpus 1: one worker.
    assert "is not compiled" not in logs.stdout + logs.stderr  # The image's worker loads the C module it built.
