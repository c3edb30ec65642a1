#!/usr/bin/env bash
# Prints the container engine to build and run the image with: docker when a Docker engine
# answers (`docker info`; a client alone is not enough), podman otherwise. When neither is
# there and this runs as root on Debian, installs podman and runc with apt-get first (runc:
# crun refuses hybrid cgroups), with container limits within the host's (runc cannot raise them).
set -euo pipefail

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  echo docker
  exit 0
fi
if ! command -v podman >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "no container engine: start Docker, or install podman and runc (as root: apt-get install podman runc)" >&2
    exit 1
  fi
  echo "installing podman and runc (apt-get)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install --yes --quiet podman runc >&2
fi
conf_dir="${CONTAINERS_CONF_DIR:-/etc/containers/containers.conf.d}"
if [ "$(id -u)" = 0 ] && [ ! -e "$conf_dir/die-hard.conf" ]; then
  mkdir -p "$conf_dir"
  cat >"$conf_dir/die-hard.conf" <<'CONF'
# Written by die-hard's docker/engine.sh: runc (crun refuses hybrid cgroups), and limits no
# higher than the host's, else runc fails with "setrlimit RLIMIT_NOFILE: Operation not permitted".
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]

[engine]
runtime = "runc"
CONF
fi
echo podman
