#!/usr/bin/env bash
# Build the serving image without a registry: a Debian bookworm base from Debian's packages, then ours on it.
#   deploy/container/build.sh [IMAGE]        (default localhost/mnist-digits:latest)
# Needs root and Debian's podman, runc, buildah and mmdebstrap (apt-get install -y podman runc buildah mmdebstrap).
# REBUILD_BASE=1 remakes the base even when it exists.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${1:-localhost/mnist-digits:latest}
BASE=${BASE_IMAGE:-localhost/bookworm-python:12}

if [[ ${REBUILD_BASE:-0} == 1 ]] || ! podman image exists "$BASE"; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # minbase: dpkg, apt and the essential set only; python3-venv brings pip's bootstrap for the virtualenv.
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$work/rootfs.tar"
  podman import --change 'CMD ["python3"]' "$work/rootfs.tar" "$BASE" >/dev/null
  echo "base image $BASE made from Debian bookworm packages" >&2
fi

# pip inside the build uses the same index as pip here (PIP_INDEX_URL or pip config's index-url), and the
# host's CA certificates, mounted over the image's own, as pip here is configured to trust them (its `cert`).
# Local (file://) indexes are not visible inside the build, so they stay out.
pip_setting() {  # $1: environment variable, $2: pip config key
  local value=${!1:-$(python3 -m pip config get "$2" 2>/dev/null || true)}
  tr ' ' '\n' <<<"$value" | grep -E '^https?://' | tr '\n' ' ' | sed 's/ $//' || true
}
index_url=$(pip_setting PIP_INDEX_URL global.index-url)
extra_index_url=$(pip_setting PIP_EXTRA_INDEX_URL global.extra-index-url)

podman build --isolation chroot --network host --format docker \
  -v /etc/ssl/certs:/etc/ssl/certs:ro \
  --build-arg BASE_IMAGE="$BASE" \
  --build-arg PIP_INDEX_URL="$index_url" --build-arg PIP_EXTRA_INDEX_URL="$extra_index_url" \
  --file Containerfile --tag "$IMAGE" .
podman image inspect "$IMAGE" --format '{{.Size}}' | awk -v image="$IMAGE" '{printf "%s: %.0f MB\n", image, $1 / 1e6}'
