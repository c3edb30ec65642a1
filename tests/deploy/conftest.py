"""Fixtures for the deployment tests: the real helm 3 and 4 binaries, rendered scenarios.

No cluster and no container engine is needed: helm and kubectl come from dev-dependency wheels
(scripts/helm.py) and run offline. A missing tool fails these tests; nothing is skipped.
"""

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from app.config.env import PROJECT_ROOT
from scripts.helm import tool_path

CHART = PROJECT_ROOT / "charts" / "die-hard"
RELEASE = "die-hard"
# Scenario name -> values file (None: the chart's defaults).
SCENARIOS = {
    "default": None,
    "minimal": CHART / "ci" / "minimal-values.yaml",
    "production": CHART / "ci" / "production-values.yaml",
    "existing-secret": CHART / "ci" / "existing-secret-values.yaml",
    "k8s": CHART / "ci" / "k8s-values.yaml",
    "dev": CHART / "ci" / "dev-values.yaml",
    "monitoring": CHART / "ci" / "monitoring-values.yaml",
}
# The scenarios meant for real clusters: every production rule applies to them. The dev
# scenario deliberately relaxes readOnlyRootFilesystem so `skaffold dev` can sync files.
PRODUCTION_SCENARIOS = ["default", "minimal", "production", "existing-secret", "k8s", "monitoring"]
HELM_VERSIONS = ["helm4", "helm3"]


@dataclass(frozen=True)
class HelmResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def documents(self) -> list[dict]:
        return [document for document in yaml.safe_load_all(self.stdout) if document]


class Helm:
    def __init__(self, binary: Path):
        self.binary = binary

    def run(self, *args: str) -> HelmResult:
        result = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=PROJECT_ROOT,
        )
        return HelmResult(result.returncode, result.stdout, result.stderr)

    def template(self, *args: str, values: Path | None = None) -> HelmResult:
        values_args = ["--values", str(values)] if values else []
        return self.run("template", RELEASE, str(CHART), *values_args, *args)


@pytest.fixture(scope="session")
def helms() -> dict[str, Helm]:
    """Helm 4 and Helm 3, both real binaries."""
    return {version: Helm(tool_path(version)) for version in HELM_VERSIONS}


@pytest.fixture(scope="session")
def helm(helms) -> Helm:
    return helms["helm4"]


@pytest.fixture(scope="session")
def kubectl() -> Path:
    return tool_path("kubectl")


@pytest.fixture(scope="session")
def rendered(helms) -> dict[tuple[str, str], list[dict]]:
    """(helm version, scenario) -> the rendered documents, `helm test` pod included."""
    results = {}
    for version, helm in helms.items():
        for scenario, values in SCENARIOS.items():
            result = helm.template(values=values)
            assert result.returncode == 0, f"{version} {scenario}: {result.stderr}"
            results[version, scenario] = result.documents
    return results


def workloads(documents: list[dict]) -> list[dict]:
    return [document for document in documents if document["kind"] in ("Deployment", "Job")]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


# The Prometheus Operator's and KEDA's kinds the chart renders (apiVersion, kind), validated
# against their CRDs in test_monitoring_objects rather than against the Kubernetes API schemas.
CUSTOM_RESOURCE_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("keda.sh/v1alpha1", "ScaledObject"),
}


def custom_resources(documents: list[dict]) -> list[dict]:
    return [d for d in documents if (d["apiVersion"], d["kind"]) in CUSTOM_RESOURCE_KINDS]


def component(document: dict) -> str:
    return document["metadata"]["labels"].get("app.kubernetes.io/component", "")


def entrypoint_roles() -> set[str]:
    """The roles docker/entrypoint.sh accepts (its `case` patterns)."""
    script = (PROJECT_ROOT / "docker" / "entrypoint.sh").read_text()
    patterns = re.findall(r"^\s+([a-z|]+)\)\s*$", script, flags=re.MULTILINE)
    return {role for pattern in patterns for role in pattern.split("|")}


_SETTING_READ = re.compile(
    r"""\b(?:env(?:\.[a-z_]+)?|env_required_in_production|os\.environ\.get|os\.getenv)\(\s*"""
    r"""["']([A-Z][A-Z0-9_]*)["']"""
)


def settings_names() -> set[str]:
    """Every environment variable the application reads (app/**/*.py and the entrypoint)."""
    names: set[str] = set()
    for path in (PROJECT_ROOT / "app").rglob("*.py"):
        names |= set(_SETTING_READ.findall(path.read_text()))
    script = (PROJECT_ROOT / "docker" / "entrypoint.sh").read_text()
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", script))
    return names


@pytest.fixture(scope="session")
def kubectl_kustomized(kubectl) -> list[dict]:
    """`kubectl kustomize k8s/`: what `kubectl apply -k k8s/` would send (offline)."""
    result = subprocess.run(
        [str(kubectl), "kustomize", str(PROJECT_ROOT / "k8s")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]
