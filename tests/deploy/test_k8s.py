"""k8s/: the plain manifests are exactly what `make k8s` generates from the chart."""

import yaml

from scripts.k8s_manifests import NAMESPACE, OUTPUT, VALUES, k8s_manifests

from .conftest import RELEASE


def test_k8s_directory_is_what_make_k8s_generates():
    expected = k8s_manifests()
    actual = {
        str(path.relative_to(OUTPUT)): path.read_text()
        for path in sorted(OUTPUT.rglob("*"))
        if path.is_file()
    }
    assert sorted(actual) == sorted(expected), "k8s/ has other files than `make k8s` writes"
    stale = [path for path in expected if actual[path] != expected[path]]
    assert not stale, f"k8s/ drifted from the chart ({stale}): run `make k8s`"


def test_kustomization_applies_the_chart_objects_into_one_namespace(helm, kubectl_kustomized):
    kustomization = yaml.safe_load((OUTPUT / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == NAMESPACE
    assert "secret.example.yaml" not in kustomization["resources"]
    result = helm.template("--namespace", NAMESPACE, values=VALUES)
    assert result.returncode == 0, result.stderr
    chart = {
        (d["kind"], d["metadata"]["name"])
        for d in result.documents
        if not d["metadata"].get("annotations", {}).get("helm.sh/hook")
    }
    applied = {(d["kind"], d["metadata"]["name"]) for d in kubectl_kustomized}
    assert applied == chart | {("Namespace", kustomization["namespace"])}
    for document in kubectl_kustomized:
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == kustomization["namespace"]
    # The pods read the Secret the example defines.
    example = yaml.safe_load((OUTPUT / "secret.example.yaml").read_text())
    assert example["kind"] == "Secret"
    assert example["metadata"]["name"] == RELEASE
    assert all("CHANGE-ME" in v or "PASSWORD" in v for v in example["stringData"].values())
    secret_refs = {
        source["secretRef"]["name"]
        for document in kubectl_kustomized
        if document["kind"] in ("Deployment", "Job")
        for container in document["spec"]["template"]["spec"]["containers"]
        for source in container["envFrom"]
        if "secretRef" in source
    }
    assert secret_refs == {example["metadata"]["name"]}


def test_k8s_readme_explains_scaling_workers():
    readme = (OUTPUT / "README.md").read_text()
    assert f"kubectl --namespace die-hard scale deployment/{RELEASE}-worker --replicas=" in readme
    assert "kubectl apply -k k8s/" in readme


def test_plain_manifests_do_not_claim_helm_manages_them(kubectl_kustomized):
    for document in kubectl_kustomized:
        labels = document["metadata"].get("labels", {})
        if document["kind"] != "Namespace":
            assert labels.get("app.kubernetes.io/managed-by") == "kustomize", document["metadata"]
        assert "helm.sh/chart" not in labels or labels["app.kubernetes.io/managed-by"] != "Helm"
    text = "".join(path.read_text() for path in OUTPUT.rglob("*.yaml"))
    assert "managed-by: Helm" not in text
