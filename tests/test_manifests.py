"""deploy/kubernetes: valid against Kubernetes' own schemas (offline, kubernetes-validate), and in agreement
with the app (routes, port, gunicorn's bind and graceful stop) and the image (its user and port)."""

import json
import os
import re
import runpy

import kubernetes_validate
import pytest
import yaml

from digits import PROJECT_ROOT
from digits.serving import api

MANIFESTS = PROJECT_ROOT / "deploy" / "kubernetes"
# The oldest version with the preStop `sleep` action on by default, and the newest kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
ROUTES = set(json.loads(api.OPENAPI_PATH.read_text())["paths"])  # tests/test_openapi.py: the app's routes.


def load(name):
    """One manifest file's single document."""
    return yaml.safe_load((MANIFESTS / name).read_text())


@pytest.fixture(scope="module")
def resources():
    """Every resource the kustomization names, by kind."""
    return {document["kind"]: document for document in map(load, load("kustomization.yaml")["resources"])}


@pytest.fixture(scope="module")
def pod(resources):
    """The Deployment's pod spec."""
    return resources["Deployment"]["spec"]["template"]


@pytest.fixture(scope="module")
def container(pod):
    """The one container."""
    (container,) = pod["spec"]["containers"]
    return container


def gunicorn_settings(env):
    """gunicorn.conf.py's settings as they come out under `env` (the container's environment)."""
    saved = dict(os.environ)
    try:
        for name in ("MNIST_BIND", "PORT", "WEB_CONCURRENCY"):  # Only the container's own settings count.
            os.environ.pop(name, None)
        os.environ.update(env)
        return runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_the_kustomization_names_every_manifest():
    named = set(load("kustomization.yaml")["resources"])
    assert named == {path.name for path in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(resources, version):
    for resource in resources.values():
        kubernetes_validate.validate(resource, version, strict=True)  # Raises on any error or unknown field.


def test_strict_validation_would_catch_a_typo(resources):
    broken = json.loads(json.dumps(resources["Service"]))
    broken["spec"]["prots"] = broken["spec"].pop("ports")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_probes_ask_the_apps_own_routes_on_the_served_port(container):
    (port,) = container["ports"]
    for probe, path in [("startupProbe", "/ready"), ("readinessProbe", "/ready"), ("livenessProbe", "/health")]:
        request = container[probe]["httpGet"]
        assert request["path"] == path and path in ROUTES
        assert request["port"] in (port["name"], port["containerPort"])


def test_gunicorn_listens_on_the_container_port_on_every_interface(container):
    (port,) = container["ports"]
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    assert gunicorn_settings(env)["bind"] == [f"0.0.0.0:{port['containerPort']}"]
    exposed = re.search(r"^EXPOSE (\d+)$", (PROJECT_ROOT / "Containerfile").read_text(), re.MULTILINE).group(1)
    assert int(exposed) == port["containerPort"]


def test_prometheus_scrapes_the_metrics_route_on_the_served_port(pod, container):
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] in ROUTES
    assert int(annotations["prometheus.io/port"]) == container["ports"][0]["containerPort"]


def test_termination_waits_for_the_pause_and_gunicorns_graceful_stop(pod, container):
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = gunicorn_settings({})["graceful_timeout"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > pause + graceful


def test_runs_as_the_images_non_root_user_on_a_read_only_root_with_writable_scratch(pod, container):
    user = re.search(r"^USER (\d+)", (PROJECT_ROOT / "Containerfile").read_text(), re.MULTILINE).group(1)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] == int(user) != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    # /tmp: gunicorn.conf.py's Prometheus folder; worker_tmp_dir (/dev/shm): the workers' heartbeats.
    for path in ["/tmp", gunicorn_settings({})["worker_tmp_dir"]]:
        assert "emptyDir" in volumes[mounts[path]]


def test_the_cpu_limit_is_whole_cores_so_gunicorn_runs_one_worker_per_core(container):
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert re.fullmatch(r"[1-9]\d*", str(limits["cpu"]))  # gunicorn.conf.py: workers = quota // period.
    assert requests["cpu"] and requests["memory"] and limits["memory"]


def test_service_pdb_and_autoscaler_point_at_the_deployment(resources, pod, container):
    labels = pod["metadata"]["labels"]
    deployment = resources["Deployment"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = resources["Service"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in (container["ports"][0]["name"],
                                                         container["ports"][0]["containerPort"])
    assert resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    autoscaler = resources["HorizontalPodAutoscaler"]
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    assert autoscaler["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                    "name": deployment["metadata"]["name"]}
    assert [metric["resource"]["name"] for metric in autoscaler["spec"]["metrics"]] == ["cpu"]
    assert autoscaler["spec"]["minReplicas"] >= 2  # So the disruption budget can let one go.
