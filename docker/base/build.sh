#!/usr/bin/env bash
# Stand-in base images for machines that reach package registries but no container registry.
#
# docker/Dockerfile builds FROM ${PYTHON_IMAGE} (python:3.13-slim) and ${UV_IMAGE}
# (ghcr.io/astral-sh/uv); with a registry, use those: this script is not needed. Without one, it
# builds look-alikes from packages:
#   - PYTHON_IMAGE: a Debian trixie root filesystem (mmdebstrap, minbase) with python3.13,
#     `python3` and `python` in /usr/local/bin as in python:3.13-slim, and this host's CA bundle
#     (SSL_CERT_FILE points at it, so uv trusts what the host trusts);
#   - UV_IMAGE: FROM scratch with /uv, the binary of the uv wheel from PyPI, the version the
#     Dockerfile's UV_IMAGE tag names.
# They are stand-ins, not python:3.13-slim: Debian's python3.13 (/usr/bin), not a source build in
# /usr/local. Usage: docker/base/build.sh [ENGINE]   (ENGINE: podman or docker; default: the one
# docker/engine.sh picks). Progress on stderr; the two image names on stdout. x86_64 only.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
engine="${1:-$("$root/docker/engine.sh")}"
# shellcheck source=docker/base/names.sh
. "$root/docker/base/names.sh"
python_image="$local_python_image"
uv_image="$local_uv_image"
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

if ! command -v mmdebstrap >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "mmdebstrap is missing: apt-get install mmdebstrap (as root)" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install --yes --quiet mmdebstrap >&2
fi
quiet=()
[ "$engine" = podman ] && quiet=(--quiet)  # docker import has no such option
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== $python_image: Debian trixie + python3.13 (mmdebstrap)" >&2
mmdebstrap --quiet --variant=minbase --include=python3.13,ca-certificates \
  --customize-hook="upload $ca_bundle /etc/ssl/certs/ca-certificates.crt" \
  --customize-hook='ln -sf /usr/bin/python3.13 "$1/usr/local/bin/python3"' \
  --customize-hook='ln -sf /usr/bin/python3.13 "$1/usr/local/bin/python"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  trixie "$work/rootfs.tar"
"$engine" import "${quiet[@]}" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
  --change 'CMD ["python3"]' \
  "$work/rootfs.tar" "$python_image" >/dev/null

echo "== $uv_image: /uv from the uv $uv_version wheel (PyPI)" >&2
# Standard library only (the venv on PATH under make has no pip): PyPI's simple index (JSON) names the
# manylinux x86_64 wheel and its sha256, checked before the binary is taken out.
python3 - "$uv_version" "$work/uv" <<'PY'
import hashlib, io, json, os, sys, urllib.request, zipfile
version, destination = sys.argv[1], sys.argv[2]
index = urllib.request.Request(
    "https://pypi.org/simple/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
)
with urllib.request.urlopen(index, timeout=60) as response:
    files = json.load(response)["files"]
name = f"uv-{version}-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
(wheel,) = [f for f in files if f["filename"] == name]
with urllib.request.urlopen(wheel["url"], timeout=300) as response:
    data = response.read()
assert hashlib.sha256(data).hexdigest() == wheel["hashes"]["sha256"], name
os.makedirs(destination)
with zipfile.ZipFile(io.BytesIO(data)) as archive:
    binary = archive.read(f"uv-{version}.data/scripts/uv")
with open(f"{destination}/uv", "wb") as out:
    out.write(binary)
os.chmod(f"{destination}/uv", 0o755)
PY
printf 'FROM scratch\nCOPY uv /uv\n' >"$work/uv/Dockerfile"
"$engine" build --quiet --tag "$uv_image" "$work/uv" >/dev/null

echo "$python_image"
echo "$uv_image"
