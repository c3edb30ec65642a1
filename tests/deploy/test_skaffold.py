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
    """JSON patch (RFC 6902) `add`, `replace` and `remove` operations, as skaffold applies a
    profile's patches (a missing target fails, as it does in skaffold)."""
    config = copy.deepcopy(config)
    for patch in patches:
        assert patch["op"] in ("add", "replace", "remove"), patch
        *parents, last = patch["path"].lstrip("/").split("/")
        node = config
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert isinstance(node, dict), f"{patch['path']}: parent is not a mapping"
        if patch["op"] == "remove":
            del node[last]  # KeyError: skaffold refuses to remove what is not there
        else:
            assert patch["op"] == "add" or last in node, patch
            node[last] = patch["value"]
    return config


def _overlay(base: object, profile: object) -> object:
    """Skaffold's profile overlay: a mapping field of the profile is overlaid key by key on the
    base's (so `deploy.kubectl` joins a base `deploy.helm`); anything else replaces it."""
    if isinstance(base, dict) and isinstance(profile, dict):
        merged = dict(base)
        for key, value in profile.items():
            merged[key] = _overlay(base.get(key), value) if key in base else value
        return merged
    return copy.deepcopy(profile)


PROFILE_FIELDS = ("build", "test", "manifests", "deploy", "portForward", "verify")


def effective_config(skaffold: dict, profile_name: str | None) -> dict:
    """The configuration skaffold runs with `-p profile_name` (None: no profile)."""
    config = {key: value for key, value in skaffold.items() if key != "profiles"}
    if profile_name is None:
        return config
    (profile,) = [p for p in skaffold["profiles"] if p["name"] == profile_name]
    config = _apply_patches(config, profile.get("patches", []))
    for key in PROFILE_FIELDS:
        if key in profile:
            config[key] = _overlay(config.get(key, {}), profile[key])
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
    (service,) = [
        d
        for d in rendered["helm4", "default"]
        if d["kind"] == "Service" and "die-hard.io/metrics" not in d["metadata"]["labels"]
    ]
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


# The parts of skaffold's v4beta13 JSON schema (docs-v2/content/en/schemas/v4beta13.json in
# GoogleContainerTools/skaffold) that this file uses, closed as skaffold's own schema is. The
# whole schema is not on any package index reachable here, so this subset is written down.
SKAFFOLD_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "skaffold/v4beta13"},
        "kind": {"const": "Config"},
        "metadata": {"type": "object"},
        "build": {"type": "object"},
        "manifests": {"$ref": "#/definitions/manifests"},
        "deploy": {"$ref": "#/definitions/deploy"},
        "portForward": {"type": "array"},
        "profiles": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "activation": {"type": "array"},
                    "requiresAllActivations": {"type": "boolean"},
                    "patches": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["path"],
                            "additionalProperties": False,
                            "properties": {
                                "op": {
                                    "enum": ["add", "remove", "replace", "move", "copy", "test"]
                                },
                                "path": {"type": "string"},
                                "value": {},
                                "from": {"type": "string"},
                            },
                        },
                    },
                    "build": {"type": "object"},
                    "test": {"type": "array"},
                    "manifests": {"$ref": "#/definitions/manifests"},
                    "deploy": {"$ref": "#/definitions/deploy"},
                    "portForward": {"type": "array"},
                    "resourceSelector": {"type": "object"},
                    "verify": {"type": "array"},
                    "customActions": {"type": "array"},
                },
            },
        },
    },
    "definitions": {
        "manifests": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "rawYaml": {"type": "array", "items": {"type": "string"}},
                "kustomize": {"type": "object"},
                "helm": {"type": "object"},
                "kpt": {"type": "object"},
                "hooks": {"type": "object"},
                "transform": {"type": "array"},
                "validate": {"type": "array"},
                "output": {"type": "string"},
            },
        },
        "deploy": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "helm": {"type": "object"},
                "kubectl": {"type": "object"},
                "kpt": {"type": "object"},
                "docker": {"type": "object"},
                "cloudrun": {"type": "object"},
                "statusCheck": {"type": "boolean"},
                "statusCheckDeadlineSeconds": {"type": "integer"},
                "tolerateFailuresUntilDeadline": {"type": "boolean"},
                "kubeContext": {"type": "string"},
                "logs": {"type": "object"},
            },
        },
    },
}


def test_skaffold_yaml_follows_the_skaffold_schema(skaffold):
    import jsonschema

    jsonschema.validate(skaffold, SKAFFOLD_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**skaffold, "deplyo": {}}, SKAFFOLD_SCHEMA)


def _objects(config: dict, helm) -> dict[str, list[tuple[str, str]]]:
    """Source -> (kind, name) of the objects a configuration deploys."""
    sources: dict[str, list[tuple[str, str]]] = {}
    for release in config.get("deploy", {}).get("helm", {}).get("releases", []):
        values = [f"--values={PROJECT_ROOT / f}" for f in release.get("valuesFiles", [])]
        result = helm.run(
            "template", release["name"], str(PROJECT_ROOT / release["chartPath"]), *values
        )
        assert result.returncode == 0, result.stderr
        sources[f"helm:{release['name']}"] = [
            (d["kind"], d["metadata"]["name"]) for d in result.documents if d["kind"] != "Pod"
        ]
    manifests = config.get("manifests", {})
    for path in manifests.get("kustomize", {}).get("paths", []):
        documents = yaml.safe_load_all((PROJECT_ROOT / path / "kustomization.yaml").read_text())
        (kustomization,) = documents
        sources[f"kustomize:{path}"] = [
            (d["kind"], d["metadata"]["name"])
            for resource in kustomization["resources"]
            for d in yaml.safe_load_all((PROJECT_ROOT / path / resource).read_text())
            if d
        ]
    for path in manifests.get("rawYaml", []):
        sources[f"rawYaml:{path}"] = [
            (d["kind"], d["metadata"]["name"])
            for d in yaml.safe_load_all((PROJECT_ROOT / path).read_text())
            if d
        ]
    return sources


@pytest.mark.parametrize("profile", [None, "dev", "k8s"])
def test_each_profile_deploys_exactly_one_set_of_objects(skaffold, helm, profile):
    """`skaffold run -p k8s` must not deploy the chart beside k8s/ (profiles overlay deploy)."""
    config = effective_config(skaffold, profile)
    sources = _objects(config, helm)
    app = [name for name, objects in sources.items() if ("Deployment", f"{RELEASE}-web") in objects]
    assert len(app) == 1, f"profile {profile}: the application comes from {app}"
    seen: dict[tuple[str, str], str] = {}
    for source, objects in sources.items():
        for obj in objects:
            assert obj not in seen, f"profile {profile}: {obj} from {seen.get(obj)} and {source}"
            seen[obj] = source
    deployers = set(config.get("deploy", {})) & {"helm", "kubectl", "kpt", "docker", "cloudrun"}
    if any(name.startswith(("kustomize:", "rawYaml:")) for name in sources):
        assert "kubectl" in deployers, "manifests need the kubectl deployer"
    expected = {None: "helm:die-hard", "dev": "helm:die-hard", "k8s": "kustomize:k8s"}
    assert app == [expected[profile]]


def test_profile_semantics_are_skaffolds(skaffold):
    """The overlay keeps base fields a profile does not name; a `remove` patch drops them."""
    base = {"deploy": {"helm": {"releases": []}}}
    profile = {"name": "p", "deploy": {"kubectl": {}}}
    assert set(effective_config({**base, "profiles": [profile]}, "p")["deploy"]) == {
        "helm",
        "kubectl",
    }
    profile["patches"] = [{"op": "remove", "path": "/deploy/helm"}]
    assert set(effective_config({**base, "profiles": [profile]}, "p")["deploy"]) == {"kubectl"}
