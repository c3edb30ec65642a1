"""The Helm chart: lint, render with Helm 3 and 4, reject bad values, keep its docs true."""

import json
import tomllib

import pytest
import yaml

from scripts.chart_docs import readme_with_table, values_keys, values_table

from .conftest import (
    CHART,
    HELM_VERSIONS,
    PROJECT_ROOT,
    RELEASE,
    SCENARIOS,
    settings_names,
)

# Variables the chart sets on the containers itself, from the values they must agree with.
CHART_MANAGED = {
    "APP_VERSION",
    "WEB_BIND",
    "METRICS_BIND",
    "WEB_GRACEFUL_TIMEOUT",
    "WORKER_QUEUES",
    "WORKER_CONCURRENCY",
    "BEAT_SCHEDULE_FILE",
}
# Set by the image (the collected static files live there).
IMAGE_MANAGED = {"STATIC_ROOT"}
SECRET_SETTINGS = {
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CLICKHOUSE_URL",
    "CLICKHOUSE_PASSWORD",
    "SENTRY_CONFIG_DSN",
}


def _schema() -> dict:
    return json.loads((CHART / "values.schema.json").read_text())


def _values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


@pytest.mark.parametrize("version", HELM_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_chart_lints_clean_in_strict_mode(helms, version, scenario):
    values = SCENARIOS[scenario]
    args = ["lint", "--strict", str(CHART), *(["--values", str(values)] if values else [])]
    result = helms[version].run(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_renders_the_same_with_helm_3_and_4(rendered, scenario):
    helm4, helm3 = rendered["helm4", scenario], rendered["helm3", scenario]
    kinds = sorted((document["kind"], document["metadata"]["name"]) for document in helm4)
    assert {"Deployment", "Service", "ConfigMap", "Job"} <= {kind for kind, _ in kinds}
    assert sorted(json.dumps(d, sort_keys=True) for d in helm4) == sorted(
        json.dumps(d, sort_keys=True) for d in helm3
    )


def test_scenarios_render_what_they_promise(rendered):
    def kinds(scenario):
        return {document["kind"] for document in rendered["helm4", scenario]}

    assert {"Ingress", "HorizontalPodAutoscaler", "NetworkPolicy"} <= kinds("production")
    assert "Secret" in kinds("default")
    assert "Secret" not in kinds("existing-secret")
    production = rendered["helm4", "production"]
    ingress = next(document for document in production if document["kind"] == "Ingress")
    assert ingress["spec"]["tls"][0]["hosts"] == ["die-hard.example.com"]
    autoscaled = {
        document["spec"]["scaleTargetRef"]["name"]
        for document in production
        if document["kind"] == "HorizontalPodAutoscaler"
    }
    assert autoscaled == {"die-hard-web", "die-hard-worker"}
    for document in production:
        # An autoscaled Deployment leaves replicas to the HPA (helm upgrade would reset it).
        if document["kind"] == "Deployment" and document["metadata"]["name"] in autoscaled:
            assert "replicas" not in document["spec"]


# (values, what the message must say) for each Helm version.
BAD_VALUES = {
    "unknown key": (
        ["--set", "webb.replicas=3"],
        {"helm4": "additional properties 'webb' not allowed", "helm3": "webb is not allowed"},
    ),
    "misspelt setting": (
        ["--set", "config.OUTBOX_BATCH_SIZ=100"],
        {
            "helm4": "additional properties 'OUTBOX_BATCH_SIZ' not allowed",
            "helm3": "OUTBOX_BATCH_SIZ is not allowed",
        },
    ),
    "negative replica count": (
        ["--set", "worker.replicas=-1"],
        {
            "helm4": "'/worker/replicas': minimum: got -1, want 0",
            "helm3": "worker.replicas: Must be greater than or equal to 0",
        },
    ),
    "wrong type": (
        ["--set-string", "web.replicas=two"],
        {
            "helm4": "'/web/replicas': got string, want null or integer",
            "helm3": "web.replicas: Invalid type",
        },
    ),
    "missing image tag": (
        ["--set", "image.tag=null"],
        {"helm4": "at '/image': missing property 'tag'", "helm3": "image: tag is required"},
    ),
    "latest image tag": (
        ["--set", "image.tag=latest"],
        {"helm4": "image.tag must name a version", "helm3": "image.tag must name a version"},
    ),
    "weak secret key": (
        ["--set", "secret.SECRET_KEY=short"],
        {"helm4": "/secret/SECRET_KEY", "helm3": "secret.SECRET_KEY"},
    ),
    "grace period shorter than the drain": (
        ["--set", "web.terminationGracePeriodSeconds=10"],
        {
            "helm4": "web.terminationGracePeriodSeconds (10) must exceed",
            "helm3": "web.terminationGracePeriodSeconds (10) must exceed",
        },
    ),
    "fewer max than min replicas": (
        ["--set", "worker.autoscaling.enabled=true,worker.autoscaling.maxReplicas=1"],
        {
            "helm4": "worker.autoscaling.maxReplicas must be at least",
            "helm3": "worker.autoscaling.maxReplicas must be at least",
        },
    ),
}


@pytest.mark.parametrize("version", HELM_VERSIONS)
@pytest.mark.parametrize("case", BAD_VALUES)
def test_bad_values_are_rejected_with_a_clear_message(helms, version, case):
    args, messages = BAD_VALUES[case]
    result = helms[version].template(*args)
    assert result.returncode != 0, f"{case} was accepted"
    assert messages[version] in result.stderr, result.stderr


def _install_notes(helm, values=None) -> str:
    values_args = ["--values", str(values)] if values else []
    result = helm.run("install", RELEASE, str(CHART), "--dry-run=client", *values_args)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("\nNOTES:\n", 1)[1]


def test_install_notes_say_what_is_missing_and_what_to_do_next(helm):
    notes = _install_notes(helm)
    assert "WARNING: the pods will not start until SECRET_KEY, DATABASE_URL, REDIS_URL" in notes
    notes = _install_notes(helm, SCENARIOS["minimal"])
    assert "WARNING" not in notes
    assert f"scale deployment/{RELEASE}-worker --replicas=" in notes
    assert f"helm test {RELEASE}" in notes
    assert "WARNING" not in _install_notes(helm, SCENARIOS["existing-secret"])


def test_every_values_key_has_a_comment():
    keys = values_keys((CHART / "values.yaml").read_text())
    assert len(keys) > 50
    documented = [key.path for key in keys if key.description]
    # A key without a comment must lie inside a value documented as a whole.
    for key in keys:
        if not key.description:
            assert any(key.path[: len(path)] == path for path in documented if path != key.path), (
                f"values.yaml: {'.'.join(key.path)} has no comment above it"
            )


def _schema_paths(schema: dict, root: dict, prefix=()) -> set[tuple[str, ...]]:
    if "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[1]]
    paths = set()
    for key, sub in schema.get("properties", {}).items():
        paths.add((*prefix, key))
        paths |= _schema_paths(sub, root, (*prefix, key))
    return paths


def _value_paths(values: dict, schema_paths: set, prefix=()) -> set[tuple[str, ...]]:
    paths = set()
    for key, value in values.items():
        path = (*prefix, key)
        paths.add(path)
        if isinstance(value, dict) and any(
            p[: len(path)] == path and p != path for p in schema_paths
        ):
            paths |= _value_paths(value, schema_paths, path)
    return paths


def test_schema_describes_every_value_and_rejects_unknown_keys():
    schema = _schema()
    schema_paths = _schema_paths(schema, schema)
    missing = _value_paths(_values(), schema_paths) - schema_paths
    assert not missing, f"values.yaml keys absent from values.schema.json: {sorted(missing)}"

    # Every object with declared properties is closed, so a typo anywhere is an error.
    def closed(node, where="values"):
        if isinstance(node, dict):
            if "properties" in node:
                assert node.get("additionalProperties") is False, f"{where} accepts unknown keys"
            for key, sub in node.items():
                closed(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for sub in node:
                closed(sub, where)

    closed(schema)


def test_configurable_variables_are_exactly_the_application_settings():
    schema = _schema()
    config = set(schema["properties"]["config"]["properties"])
    secret = set(schema["properties"]["secret"]["properties"])
    assert secret == SECRET_SETTINGS
    assert set(_values()["secret"]) == SECRET_SETTINGS
    assert not config & (secret | CHART_MANAGED), "a variable must have exactly one place"
    settings = settings_names()
    unknown = (config | secret | CHART_MANAGED | IMAGE_MANAGED) - settings
    assert not unknown, f"the chart sets variables the application never reads: {unknown}"
    unsettable = settings - (config | secret | CHART_MANAGED | IMAGE_MANAGED)
    assert not unsettable, (
        f"settings the chart cannot set: {sorted(unsettable)}; add them to config (or secret) in "
        "charts/die-hard/values.schema.json"
    )


def test_chart_readme_values_table_is_up_to_date():
    readme = (CHART / "README.md").read_text()
    table = values_table((CHART / "values.yaml").read_text())
    assert readme == readme_with_table(readme, table), (
        "charts/die-hard/README.md is out of date: run `make chart-docs`"
    )


def test_chart_app_version_is_the_project_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    assert chart["apiVersion"] == "v2"
