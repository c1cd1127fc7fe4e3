"""deploy/: the compose file validates, and the files say what the deployment relies on.

`docker compose config` checks the compose file where the Docker client has the compose plugin; where
it has not (no Docker here, say), the same file is read as YAML and checked for what nginx, the
instances and the probes rely on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return document


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_the_compose_file_validates() -> None:
    client = _compose_client()
    if client is not None:
        checked = subprocess.run(
            [*client, "-f", str(DEPLOY / "docker-compose.yml"), "config", "--quiet"],
            env={"STAGEVOTE_SECRET_KEY": "x" * 48, "PATH": "/usr/bin:/bin:/usr/local/bin"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr
    services = _compose()["services"]
    assert {"nginx", "api-1", "api-2", "worker", "migrate", "postgres", "redis", "rabbitmq"} <= set(services)
    # nginx renders the same template the distributed test renders, with every variable it names
    nginx = services["nginx"]
    [mount] = nginx["volumes"]
    assert mount.startswith("./nginx/stagevote.conf.template:/etc/nginx/templates/")
    wanted = set(re.findall(r"\$\{(\w+)\}", (DEPLOY / "nginx" / "stagevote.conf.template").read_text()))
    assert wanted <= set(nginx["environment"])
    for instance in ("api-1", "api-2"):
        assert services[instance]["environment"]["STAGEVOTE_REDIS_URL"]  # several processes share Redis
    assert services["worker"]["command"] == ["stagevote", "worker"]


def test_the_image_runs_as_a_user_with_a_healthcheck() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) == 2  # build stage, then the slim runtime
    assert re.search(r"^USER (?!root|0\b)", dockerfile, re.MULTILINE)
    assert "HEALTHCHECK" in dockerfile and "/health" in dockerfile


def test_kubernetes_probes_and_autoscaling() -> None:
    documents = [d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert {("Deployment", "stagevote-api"), ("Deployment", "stagevote-worker")} <= kinds
    assert ("HorizontalPodAutoscaler", "stagevote-api") in kinds
    api = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "stagevote-api")
    [container] = api["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
