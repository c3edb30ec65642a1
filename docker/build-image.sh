#!/usr/bin/env bash
# Builds IMAGE:VERSION from docker/Dockerfile with the engine docker/engine.sh picks, on the
# host's network (its name resolution and proxy reach the package index) and, with podman, its
# CA bundle mounted into the build steps. BASES=local builds FROM the stand-in base images of
# docker/base/build.sh (made first when missing) instead of the registry images the Dockerfile
# names. Usage: IMAGE=die-hard VERSION=1.2.3 [BASES=registry|local] docker/build-image.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
: "${IMAGE:?}" "${VERSION:?}"
bases="${BASES:-registry}"
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
engine="$("$root/docker/engine.sh")"

args=(--file docker/Dockerfile --network host --build-arg "APP_VERSION=$VERSION" --tag "$IMAGE:$VERSION")
if [ "$engine" = podman ] && [ -f "$ca_bundle" ]; then
  args+=(--volume "$ca_bundle:/etc/ssl/certs/ca-certificates.crt:ro")
fi
case "$bases" in
  registry) ;;
  local)
    # shellcheck source=docker/base/names.sh
    . "$root/docker/base/names.sh"
    if ! "$engine" image inspect "$local_python_image" "$local_uv_image" >/dev/null 2>&1; then
      "$root/docker/base/build.sh" "$engine" >/dev/null
    fi
    args+=(--build-arg "PYTHON_IMAGE=$local_python_image" --build-arg "UV_IMAGE=$local_uv_image")
    ;;
  *)
    echo "BASES is registry or local, not $bases" >&2
    exit 64
    ;;
esac
cd "$root"
echo "+ $engine build ${args[*]} ." >&2
exec "$engine" build "${args[@]}" .
