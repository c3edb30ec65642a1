# Sourced by docker/base/build.sh and docker/build-image.sh: the stand-in base images' names.
# The uv version is the one the Dockerfile's UV_IMAGE tag names.
uv_version="$(sed -n 's|^ARG UV_IMAGE=.*:\(.*\)$|\1|p' "$root/docker/Dockerfile")"
local_python_image="${LOCAL_PYTHON_IMAGE:-localhost/die-hard-base/python:3.13-trixie}"
local_uv_image="${LOCAL_UV_IMAGE:-localhost/die-hard-base/uv:$uv_version}"
