"""skaffold.yaml: one artifact from docker/, the chart deployed with it, dev sync, k8s profile."""

import copy
import re

import pytest
import yaml

from .conftest import CHART, PROJECT_ROOT, RELEASE


@pytest.fixture(scope="module")
def skaffold() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "skaffold.yaml").read_text())


def _apply_patches(config: dict, patches: list[dict]) -> dict:
    """JSON patch (RFC 6902) `add` operations, as skaffold applies a profile's patches."""
    config = copy.deepcopy(config)
    for patch in patches:
        assert patch["op"] == "add", patch
        *parents, last = patch["path"].lstrip("/").split("/")
        node = config
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert isinstance(node, dict), f"{patch['path']}: parent is not a mapping"
        node[last] = patch["value"]
    return config


def _template_value(template: str, artifact: str) -> str:
    """What skaffold substitutes, for a built image `registry.local/<artifact>:abc1234`."""
    key = re.sub(r"[^A-Za-z0-9]", "_", artifact)
    values = {f"IMAGE_REPO_{key}": f"registry.local/{artifact}", f"IMAGE_TAG_{key}": "abc1234"}

    def substitute(match):
        assert match[1] in values, f"{match[1]} is not a template value for {artifact}"
        return values[match[1]]

    return re.sub(r"\{\{\s*\.(\w+)\s*\}\}", substitute, template)


def test_one_artifact_built_from_docker(skaffold):
    assert re.fullmatch(r"skaffold/v4beta\d+", skaffold["apiVersion"])
    assert skaffold["kind"] == "Config"
    (artifact,) = skaffold["build"]["artifacts"]
    assert artifact["context"] == "."
    assert artifact["docker"]["dockerfile"] == "docker/Dockerfile"
    assert (PROJECT_ROOT / artifact["context"] / artifact["docker"]["dockerfile"]).is_file()
    dockerfile = (PROJECT_ROOT / "docker" / "Dockerfile").read_text()
    for build_arg in artifact["docker"].get("buildArgs", {}):
        assert re.search(rf"^ARG {build_arg}\b", dockerfile, re.MULTILINE), build_arg


def test_the_artifact_is_the_image_the_chart_uses(skaffold):
    (artifact,) = skaffold["build"]["artifacts"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert artifact["image"] == values["image"]["repository"]
    kustomization = yaml.safe_load((PROJECT_ROOT / "k8s" / "kustomization.yaml").read_text())
    assert artifact["image"] in {image["name"] for image in kustomization["images"]}


def test_chart_release_takes_the_built_image(skaffold, helm):
    (artifact,) = skaffold["build"]["artifacts"]
    (release,) = skaffold["deploy"]["helm"]["releases"]
    assert release["name"] == RELEASE
    assert (PROJECT_ROOT / release["chartPath"]).resolve() == CHART
    templates = release["setValueTemplates"]
    assert set(templates) == {"image.repository", "image.tag"}
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for key in templates:
        node = values
        for part in key.split("."):
            assert part in node, f"setValueTemplates key {key} is not in the chart's values"
            node = node[part]
    sets = [f"--set={key}={_template_value(t, artifact['image'])}" for key, t in templates.items()]
    result = helm.run("template", release["name"], str(PROJECT_ROOT / release["chartPath"]), *sets)
    assert result.returncode == 0, result.stderr
    images = {
        container["image"]
        for document in result.documents
        if document["kind"] in ("Deployment", "Job")
        for container in document["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"registry.local/{artifact['image']}:abc1234"}


def test_port_forward_reaches_the_web_service(skaffold, rendered):
    (forward,) = skaffold["portForward"]
    (service,) = [d for d in rendered["helm4", "default"] if d["kind"] == "Service"]
    assert forward["resourceType"] == "service"
    assert forward["resourceName"] == service["metadata"]["name"]
    assert forward["port"] in {port["port"] for port in service["spec"]["ports"]}
    assert forward["localPort"] == 8000


def test_dev_profile_syncs_python_files_into_the_image_layout(skaffold, helm):
    profiles = {profile["name"]: profile for profile in skaffold["profiles"]}
    dev = profiles["dev"]
    assert {"command": "dev"} in dev["activation"]
    config = _apply_patches(skaffold, dev["patches"])
    (artifact,) = config["build"]["artifacts"]
    (rule,) = artifact["sync"]["manual"]
    assert rule == {"src": "app/**/*.py", "dest": "/app"}
    dockerfile = (PROJECT_ROOT / "docker" / "Dockerfile").read_text()
    assert "WORKDIR /app" in dockerfile
    assert "COPY app ./app" in dockerfile
    assert artifact["docker"]["buildArgs"]["CODE_OWNER"] == "10001:10001"
    (release,) = config["deploy"]["helm"]["releases"]
    for values_file in release["valuesFiles"]:
        result = helm.template(values=PROJECT_ROOT / values_file)
        assert result.returncode == 0, result.stderr
    for manifest in dev["manifests"]["rawYaml"]:
        assert (PROJECT_ROOT / manifest).is_file()
    assert "kubectl" in config["deploy"], "raw manifests need the kubectl deployer"


def test_k8s_profile_deploys_the_plain_manifests(skaffold, kubectl_kustomized):
    profiles = {profile["name"]: profile for profile in skaffold["profiles"]}
    k8s = profiles["k8s"]
    assert k8s["manifests"]["kustomize"]["paths"] == ["k8s"]
    assert set(k8s["deploy"]) == {"kubectl"}, "the chart is not deployed in this profile"
    (forward,) = k8s["portForward"]
    services = {
        (d["metadata"]["name"], d["metadata"]["namespace"])
        for d in kubectl_kustomized
        if d["kind"] == "Service"
    }
    assert (forward["resourceName"], forward["namespace"]) in services
