"""Fixtures of the container tests: the image (built when missing), the backing services (one
set per test session), and a Cluster factory whose clusters are closed after each test."""

import os
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.config.env import PROJECT_ROOT

from .backing import BackingServices
from .cluster import Cluster
from .podman import ensure_image


def default_image() -> str:
    """localhost/die-hard:<the project's version>, as `make image` tags it; E2E_IMAGE wins."""
    if "E2E_IMAGE" in os.environ:
        return os.environ["E2E_IMAGE"]
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as pyproject:
        version = tomllib.load(pyproject)["project"]["version"]
    return f"localhost/die-hard:{version}"


@pytest.fixture(scope="session")
def image() -> str:
    return ensure_image(default_image())


@pytest.fixture(scope="session")
def services(tmp_path_factory) -> Iterator[BackingServices]:
    with BackingServices(tmp_path_factory.mktemp("services")) as services:
        yield services


@pytest.fixture
def make_cluster(image, services, tmp_path) -> Iterator[Callable[..., Cluster]]:
    """make_cluster(name, **Cluster options): a new Cluster (one release) on the session's
    services. The clusters of one session share the services (database, Redis db, ClickHouse),
    so a test must not depend on empty tables."""
    made: list[Cluster] = []

    def make(name: str = "cluster", **options) -> Cluster:
        cluster = Cluster(Path(tmp_path) / name, image, services, **options)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.close()
