"""Deliberate breaks, each rendered with the chart and one change, run with the real image:
the runner must fail the install with a message that names the problem (the probe and what it
got, the path and "Read-only file system", the role and the entrypoint's usage) rather than
just time out. Each install waits at most BREAK_TIMEOUT seconds."""

import pytest

from tests.support.processes import wait_until

from .cluster import RolloutFailed

BREAK_TIMEOUT = 45
DOOM = "/tmp/liveness-fails"  # noqa: S108 - in the pod's /tmp emptyDir


def web_container(documents: list[dict]) -> dict:
    (web,) = [d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] ==
              "die-hard-web"]  # fmt: skip
    return web["spec"]["template"]["spec"]["containers"][0]


def deployment_container(documents: list[dict], component: str) -> dict:
    (deployment,) = [
        d for d in documents
        if d["kind"] == "Deployment" and d["metadata"]["name"] == f"die-hard-{component}"
    ]  # fmt: skip
    return deployment["spec"]["template"]["spec"]["containers"][0]


def install_failure(cluster, **options) -> str:
    with pytest.raises(RolloutFailed) as failure:
        cluster.install(timeout=BREAK_TIMEOUT, **options)
    print(failure.value)  # noqa: T201 - the message, for the reader of the test's output
    return str(failure.value)


def test_a_readiness_probe_path_changed_is_named_with_the_response(make_cluster):
    def break_readiness_path(documents: list[dict]) -> None:
        deployment_container(documents, "web")["readinessProbe"]["httpGet"]["path"] = (
            "/healthz/readyz"
        )

    message = install_failure(make_cluster(post_render=break_readiness_path))
    assert "die-hard-web" in message
    assert "last readiness probe FAILED: GET http://10.88." in message
    # Django answers 400 (DisallowedHost: the pod IP) for any path but the health checks.
    assert ":8000/healthz/readyz: 400" in message


def test_the_port_web_listens_on_changed_is_named_by_the_refused_probe(make_cluster):
    # WEB_BIND through the chart's extraEnv: gunicorn listens on 8001, the probes knock on 8000.
    message = install_failure(
        make_cluster(),
        set_values={"web.extraEnv[0].name": "WEB_BIND", "web.extraEnv[0].value": "0.0.0.0:8001"},
    )
    assert "last startup probe FAILED: GET http://10.88." in message
    assert ":8000/healthz/startup: ConnectionRefusedError" in message


def test_a_written_path_outside_every_volume_is_named_with_read_only_file_system(make_cluster):
    # Beat's schedule file under /app, on the read-only root instead of the /tmp emptyDir.
    message = install_failure(
        make_cluster(),
        set_values={
            "beat.extraEnv[0].name": "BEAT_SCHEDULE_FILE",
            "beat.extraEnv[0].value": "/app/celerybeat-schedule",
        },
    )
    assert "container beat" in message
    assert "crash loop" in message
    assert "Read-only file system" in message
    assert "/app/celerybeat-schedule" in message


def test_the_tmp_volume_removed_is_named_with_read_only_file_system(make_cluster):
    def remove_tmp_volume(documents: list[dict]) -> None:
        for document in documents:
            if document["kind"] == "Deployment" and document["metadata"]["name"].endswith("beat"):
                spec = document["spec"]["template"]["spec"]
                spec["volumes"] = []
                for container in spec["containers"]:
                    container["volumeMounts"] = []

    message = install_failure(make_cluster(post_render=remove_tmp_volume))
    assert "container beat" in message
    assert "Read-only file system" in message
    assert "/tmp/" in message  # noqa: S108 - the path the app could not write


def test_a_role_the_image_does_not_have_is_named_with_the_entrypoint_usage(make_cluster):
    def misspell_the_worker_role(documents: list[dict]) -> None:
        deployment_container(documents, "worker")["args"] = ["wrker"]

    message = install_failure(make_cluster(post_render=misspell_the_worker_role))
    assert "container worker" in message
    assert "exit codes [64, 64]" in message
    assert "usage: /app/docker/entrypoint.sh {web|worker|beat|migrate|relay|manage}" in message


def test_a_failing_liveness_probe_restarts_the_container_and_is_named(make_cluster):
    # Beat's liveness probe made to fail once a file exists in its /tmp emptyDir, which
    # outlives the container's restarts: every restart is killed again by the same probe.
    def failing_liveness(documents: list[dict]) -> None:
        container = deployment_container(documents, "beat")
        container["livenessProbe"] = {
            "exec": {"command": ["sh", "-c", f"test ! -e {DOOM}"]},
            "periodSeconds": 1,
            "failureThreshold": 2,
            # `podman exec` alone may take over a second on a busy machine.
            "timeoutSeconds": 10,
        }

    cluster = make_cluster(post_render=failing_liveness)
    cluster.install()
    (beat,) = cluster.pods("beat")
    cluster.exec(beat.name, ["touch", DOOM])
    assert wait_until(lambda: cluster.pods("beat")[0].restarts >= 2, timeout=90)
    description = cluster.describe(beat.name)
    print(description)  # noqa: T201
    assert f"killed by the kubelet: liveness probe failed 2 times: sh -c 'test ! -e {DOOM}': " \
           "exit 1" in description  # fmt: skip
    assert cluster.pods("beat")[0].name == beat.name, "restarted in place, not replaced"
    failures = [e for e in cluster.probe_events if e.kind == "liveness" and not e.passed]
    assert len(failures) >= 4
