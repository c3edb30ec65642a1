"""podman, as the runner calls it: one command at a time, its failure named; and the image,
built with `make image BASES=local` when it is missing."""

import subprocess

from app.config.env import PROJECT_ROOT

LABEL = "die-hard-e2e"  # every pod and container the runner creates carries it (its owner)


class PodmanError(RuntimeError):
    pass


def podman(
    *args: str, timeout: float | None = 120, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode:
        raise PodmanError(f"podman {' '.join(args)}: exit {result.returncode}: {result.stderr}")
    return result


def image_exists(image: str) -> bool:
    return podman("image", "exists", image, check=False).returncode == 0


def ensure_image(image: str) -> str:
    """`image` (`[localhost/]NAME:TAG`), built from this checkout with `make image BASES=local
    IMAGE=NAME VERSION=TAG` (the stand-in bases, made first when missing) if podman lacks it."""
    if image_exists(image):
        return image
    name, _, tag = image.removeprefix("localhost/").rpartition(":")
    if not name:
        raise ValueError(f"{image}: name the tag (NAME:TAG), it becomes the image's APP_VERSION")
    subprocess.run(
        ["make", "image", "BASES=local", f"IMAGE={name}", f"VERSION={tag}"],
        cwd=PROJECT_ROOT,
        check=True,
        timeout=900,
    )
    if not image_exists(image):
        raise PodmanError(f"make image built {name}:{tag}, yet podman has no {image}")
    return image


def bridge_gateway(network: str = "podman") -> tuple[str, str]:
    """(gateway IP, bridge interface) of a podman bridge network: where the host is reached
    from the containers on it."""
    import json

    (inspected,) = json.loads(podman("network", "inspect", network).stdout)
    return inspected["subnets"][0]["gateway"], inspected["network_interface"]
