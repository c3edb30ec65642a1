"""Every rendered object against the Kubernetes API schemas (kubernetes-validate --strict)."""

import copy
import json

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions, latest_version

from .conftest import PROJECT_ROOT, SCENARIOS, custom_resources

OLDEST_SUPPORTED = "1.29.0"
VERSIONS = sorted(
    {version for version in all_versions() if tuple(map(int, version.split("."))) >= (1, 29, 0)},
    key=lambda version: tuple(map(int, version.split("."))),
)


def _strict_errors(documents: list[dict], version: str) -> list[str]:
    errors = []
    for document in documents:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            name = f"{document['kind']}/{document['metadata']['name']}"
            errors.append(f"{name}: {error.message} at {list(error.path)}")
    return errors


@pytest.fixture(scope="module")
def every_object(rendered, kubectl_kustomized) -> list[dict]:
    documents = [d for scenario in SCENARIOS for d in rendered["helm4", scenario]]
    # The Prometheus Operator's and KEDA's kinds: against their CRDs, in test_monitoring_objects.
    documents = [d for d in documents if d not in custom_resources(documents)]
    documents += kubectl_kustomized
    dev_services = PROJECT_ROOT / "docker" / "dev-services.k8s.yaml"
    documents += [d for d in yaml.safe_load_all(dev_services.read_text()) if d]
    # Scenarios share many objects: validate each distinct one once.
    return list({json.dumps(d, sort_keys=True): d for d in documents}.values())


def test_versions_cover_the_oldest_supported_and_the_newest_bundled():
    assert VERSIONS[0] == OLDEST_SUPPORTED
    assert VERSIONS[-1] == latest_version()


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_is_valid_in_strict_mode(every_object, version):
    assert len(every_object) > 40
    errors = _strict_errors(every_object, version)
    assert not errors, "\n".join(errors)


def test_strict_validation_catches_a_misplaced_field(every_object):
    deployment = copy.deepcopy(next(d for d in every_object if d["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFilesystem"] = True
    assert _strict_errors([deployment], OLDEST_SUPPORTED)
