"""deploy/k8s offline: YAML lint, the Kustomize base and production overlay rendered here and every object
validated against the Kubernetes schemas (kubernetes-validate, strict); operator resources (KEDA, RabbitMQ and
MongoDB operators) against the fields their CRDs require; and the manifests read against the code."""
import copy
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from devstack.stack import SERVICES

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"
NAMEKO_VARS = set(re.findall(r"\$\{([A-Z_]+)", (K8S.parent / "nameko.yaml").read_text()))

CRD_SCHEMAS = {
    "ScaledObject": {"type": "object", "required": ["spec"], "properties": {"spec": {
        "type": "object", "required": ["scaleTargetRef", "triggers"], "additionalProperties": False,
        "properties": {"scaleTargetRef": {"type": "object", "required": ["name"]},
                       "minReplicaCount": {"type": "integer", "minimum": 0},
                       "maxReplicaCount": {"type": "integer", "minimum": 1},
                       "cooldownPeriod": {"type": "integer"},
                       "triggers": {"type": "array", "minItems": 1, "items": {
                           "type": "object", "required": ["type", "metadata"],
                           "properties": {"type": {"type": "string"}, "metadata": {
                               "type": "object", "additionalProperties": {"type": "string"}}}}}}}}},
    "TriggerAuthentication": {"type": "object", "required": ["spec"], "properties": {"spec": {
        "type": "object", "required": ["secretTargetRef"], "properties": {"secretTargetRef": {
            "type": "array", "items": {"type": "object", "required": ["parameter", "name", "key"]}}}}}},
    "RabbitmqCluster": {"type": "object", "required": ["spec"], "properties": {"spec": {
        "type": "object", "required": ["replicas"], "properties": {
            "replicas": {"type": "integer", "enum": [1, 3, 5]}, "image": {"type": "string"}}}}},
    "MongoDBCommunity": {"type": "object", "required": ["spec"], "properties": {"spec": {
        "type": "object", "required": ["members", "type", "version", "security", "users"], "properties": {
            "members": {"type": "integer", "minimum": 3}, "type": {"enum": ["ReplicaSet"]},
            "version": {"type": "string", "pattern": r"^7\."}}}}},
}


def load_docs(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def merge(base, patch):
    """Strategic-merge as far as these patches need: maps merge, everything else is replaced."""
    result = copy.deepcopy(base)
    for key, value in patch.items():
        result[key] = merge(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) \
            else copy.deepcopy(value)
    return result


def render(directory):
    """A small Kustomize: resources, patches, namespace, image tags."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects = []
    for resource in kustomization.get("resources", []):
        target = directory / resource
        objects += render(target) if target.is_dir() else load_docs(target)
    for patch in kustomization.get("patches", []):
        patch_doc = load_docs(directory / patch["path"])[0]
        matches = [i for i, o in enumerate(objects)
                   if (o["kind"], o["metadata"]["name"]) == (patch_doc["kind"], patch_doc["metadata"]["name"])]
        assert len(matches) == 1, f"patch {patch['path']} matches {len(matches)} objects"
        objects[matches[0]] = merge(objects[matches[0]], patch_doc)
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] != "Namespace":
                obj["metadata"]["namespace"] = kustomization["namespace"]
    tags = {i["name"]: i["newTag"] for i in kustomization.get("images", [])}
    for obj in objects:
        for container in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            name = container["image"].split(":")[0]
            if name in tags:
                container["image"] = f"{name}:{tags[name]}"
    return objects


def validate(obj):
    if obj["kind"] in CRD_SCHEMAS:
        jsonschema.validate(obj, CRD_SCHEMAS[obj["kind"]])
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_yaml_lints_clean():
    config = YamlLintConfig("extends: default\nrules: {line-length: {max: 120}, document-start: disable, "
                            "truthy: {check-keys: false}, comments: {min-spaces-from-content: 1}}")
    problems = [f"{path.relative_to(K8S)}:{p.line}: {p.message}" for path in sorted(K8S.rglob("*.yaml"))
                for p in linter.run(path.read_text(), config) if p.level == "error"]
    assert problems == []


@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_every_object_validates(overlay):
    objects = render(K8S / overlay)
    assert len(objects) >= 20
    for obj in objects:
        validate(obj)


def test_the_validation_can_fail():
    deployment = next(o for o in render(K8S / "base") if o["kind"] == "Deployment")
    broken = merge(deployment, {"spec": {"replicas": "two"}})
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    scaled = next(o for o in render(K8S / "base") if o["kind"] == "ScaledObject")
    with pytest.raises(jsonschema.ValidationError):
        validate(merge(scaled, {"spec": {"triggers": []}}))


def test_production_overlay_is_production():
    objects = {(o["kind"], o["metadata"]["name"]): o for o in render(K8S / "overlays/production")}
    assert objects[("ConfigMap", "sitax-config")]["data"]["APP_ENV"] == "production"
    assert objects[("ConfigMap", "sitax-config")]["data"]["DEV_CLOCK_ENABLED"] == "false"
    assert all(o["metadata"].get("namespace") == "sitax" for k, o in objects.items() if k[0] != "Namespace")
    assert objects[("Deployment", "gateway")]["spec"]["replicas"] == 3


def test_manifests_match_the_code():
    objects = render(K8S / "base")
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    expected = {name.replace("_", "-"): entry for name, entry in SERVICES.items()}
    expected["gateway"] = "gateway.service:GatewayService"
    assert set(deployments) == set(expected)
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    assert set(config["data"]) <= NAMEKO_VARS
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == [expected[name]]
        assert {e["name"] for e in container["env"]} <= NAMEKO_VARS | {"SERVICE_NAME"}
        probe = container["livenessProbe"]["httpGet"]
        assert probe["path"] in ("/healthz", "/health")
        kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
        assert ("PodDisruptionBudget", name) in kinds
        assert ("HorizontalPodAutoscaler" if name == "gateway" else "ScaledObject", name) in kinds
    for scaled in (o for o in objects if o["kind"] == "ScaledObject"):
        service = scaled["metadata"]["name"].replace("-", "_")
        assert scaled["spec"]["triggers"][0]["metadata"]["queueName"] == f"rpc-{service}"
