"""The deployment files, checked statically (no container engine or cluster here): Kubernetes
manifests against the Kubernetes OpenAPI schemas (kubernetes-validate, offline), the compose file
against the Compose Specification's schema (vendored), and both against the code: every SURVEY_*
variable is a real setting, every command parses with the real CLI, ports and names agree."""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from commands import distributed as distributed_cli
from commands.cli import build_parser
from schemas.settings import Settings
from tests.conftest import ROOT
from tests.helpers import unavailable

DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30.0"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
IMAGE = f"survey-ingest:{PYPROJECT['project']['version']}"
# Variables our containers get that are not settings: the pod's name (the worker's instance id).
NOT_SETTINGS = {"POD_NAME"}
WORKLOADS = ("Deployment", "StatefulSet", "Job")
NEXT_UPSTREAM = "proxy_next_upstream error timeout http_503 non_idempotent;"


def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def ours(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if s.get("image") == IMAGE}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(file, workload, container) for every container of our image."""
    for name, doc in k8s_docs():
        if doc["kind"] in WORKLOADS:
            for c in pod_spec(doc)["containers"]:
                if c["image"] == IMAGE:
                    yield name, doc, c


def setting_name(variable: str) -> str | None:
    return variable[len("SURVEY_"):].lower() if variable.startswith("SURVEY_") else None


def config_data() -> dict[str, str]:
    """The settings the roles get (not the monitoring Secret and scrape config for Prometheus)."""
    data: dict[str, str] = {}
    for _, doc in k8s_docs():
        if doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "monitoring":
            continue
        if doc["kind"] == "ConfigMap":
            data.update(doc["data"])
        elif doc["kind"] == "Secret":
            data.update(doc.get("stringData", {}))
    return data


# Schemas

def test_every_kubernetes_manifest_passes_the_openapi_schemas() -> None:
    docs = k8s_docs()
    kinds = {doc["kind"] for _, doc in docs}
    assert {"Deployment", "StatefulSet", "Service", "Job", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "ConfigMap", "Secret"} <= kinds
    for name, doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert doc["metadata"]["namespace" if doc["kind"] != "Namespace" else "name"] == \
            "survey-ingest", name
    # The validator is not vacuous: an unknown field and a wrong type are refused.
    deployment = next(doc for _, doc in docs if doc["kind"] == "Deployment")
    for breakage in ({"replicaz": 3}, {"replicas": "three"}):
        broken = copy.deepcopy(deployment)
        broken["spec"].update(breakage)
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def _compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((DEPLOY / "schemas" / "compose-spec.json").read_text())
    return jsonschema.Draft201909Validator(schema)


def test_compose_file_passes_the_compose_spec_schema() -> None:
    validator = _compose_validator()
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors
    broken = compose()
    broken["services"]["api"]["restart"] = ["always"]
    assert list(validator.iter_errors(broken))


# Cross-checks against the code

def _settings_from(variables: dict[str, str]) -> Settings:
    """The settings these variables make (compose's ${...} interpolations stand for a string)."""
    with pytest.MonkeyPatch.context() as mp:
        for variable, value in variables.items():
            if variable.startswith("SURVEY_") and not value.startswith("${"):
                mp.setenv(variable, value)
        return Settings()


def test_every_survey_variable_is_a_real_setting_with_a_valid_value() -> None:
    fields = set(Settings.model_fields)
    sources: dict[str, dict[str, str]] = {"k8s config": config_data()}
    for _name, doc, c in containers():
        sources[f"k8s {doc['metadata']['name']}"] = {
            **config_data(), **{e["name"]: e.get("value", "") for e in c.get("env", [])}}
    for name, service in ours(compose()["services"]).items():
        sources[f"compose {name}"] = {k: str(v) for k, v in service["environment"].items()}
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    sources["Dockerfile"] = dict(re.findall(r"\b(SURVEY_[A-Z_]+)=(\S+)", dockerfile))
    for where, variables in sources.items():
        unknown = [v for v in variables if setting_name(v) not in fields and v not in NOT_SETTINGS]
        assert not unknown, f"{where}: not settings in schemas/settings.py: {unknown}"
        _settings_from(variables)  # a value the settings object refuses raises here
    assert _settings_from(config_data()).raw_partitions == int(
        config_data()["SURVEY_RAW_PARTITIONS"])


def _parses(args: list[str]) -> str:
    args = [re.sub(r"\$\((\w+)\)", r"pod-0", a) for a in args]  # Kubernetes' $(VAR) expansion
    namespace = build_parser().parse_args(args)  # SystemExit on anything unknown
    return str(namespace.command)


def test_every_command_is_a_real_cli_invocation() -> None:
    roles = {_parses(c["args"]) for _, _, c in containers()}
    assert roles == {"collector", "worker", "findings", "api", "migrate"}
    compose_roles = {_parses(s["command"]) for s in ours(compose()["services"]).values()}
    assert compose_roles == roles
    # Probes' and hooks' inline Python compiles.
    snippets = [c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
                for _, _, c in containers()]
    snippets += [c.get("readinessProbe", {}).get("exec", {}).get("command", [])
                 for _, _, c in containers()]
    snippets += [s["healthcheck"]["test"][1:] for s in ours(compose()["services"]).values()
                 if "healthcheck" in s]
    for command in filter(None, snippets):
        if command[0] == "python":
            assert command[1] == "-c"
            compile(command[2], "<probe>", "exec")


def _flag(args: list[str], flag: str, default: int) -> int:
    return int(args[args.index(flag) + 1]) if flag in args else default


def test_kubernetes_ports_probes_and_selectors_agree() -> None:
    docs = k8s_docs()
    workloads = {doc["metadata"]["name"]: doc for _, doc in docs if doc["kind"] in WORKLOADS}
    services = {doc["metadata"]["name"]: doc for _, doc in docs if doc["kind"] == "Service"}
    for _, doc, c in containers():
        role = _parses(c["args"])
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        if role in ("collector", "api"):
            default = (distributed_cli.COLLECTOR_PORT if role == "collector"
                       else distributed_cli.API_PORT)
            assert ports == {"http": _flag(c["args"], "--port", default)}
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        if role == "findings":
            assert ports == {"metrics": _flag(c["args"], "--metrics-port", 8083)}
            assert doc["spec"]["replicas"] == 1 and doc["spec"]["strategy"]["type"] == "Recreate"
            readiness = " ".join(c["readinessProbe"]["exec"]["command"])
            assert f"127.0.0.1:{ports['metrics']}/metrics" in readiness
        if role == "worker":
            assert ports == {"metrics": _flag(c["args"], "--metrics-port", 8082)}
            assert "--instance-id" in c["args"] and doc["kind"] == "StatefulSet"
            readiness = " ".join(c["readinessProbe"]["exec"]["command"])
            assert f"127.0.0.1:{ports['metrics']}/metrics" in readiness
            partitions = int(config_data()["SURVEY_RAW_PARTITIONS"])
            assert doc["spec"]["replicas"] <= partitions, "workers beyond the partitions idle"
            assert services[doc["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            port = c.get(probe, {}).get("httpGet", {}).get("port")
            assert port is None or port in ports or port in ports.values()
        resources = c["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
        refs = {next(iter(r.values()))["name"] for r in c.get("envFrom", [])}
        names = {d["metadata"]["name"] for _, d in docs if d["kind"] in ("ConfigMap", "Secret")}
        assert refs <= names

    def selected(selector: dict[str, str]) -> list[dict[str, Any]]:
        return [w for w in workloads.values()
                if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]

    for service in services.values():
        (workload,) = selected(service["spec"]["selector"])  # exactly one workload each
        named = {p["name"] for c in pod_spec(workload)["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= named
    for _, doc in docs:
        if doc["kind"] == "PodDisruptionBudget":
            assert selected(doc["spec"]["selector"]["matchLabels"])
        if doc["kind"] == "HorizontalPodAutoscaler":
            target = doc["spec"]["scaleTargetRef"]
            assert workloads[target["name"]]["kind"] == target["kind"] == "Deployment"
            assert doc["spec"]["minReplicas"] == workloads[target["name"]]["spec"]["replicas"]
        if doc["kind"] == "Ingress":
            for rule in doc["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    backend = path["backend"]["service"]
                    assert backend["port"]["name"] in {
                        p["name"] for p in services[backend["name"]]["spec"]["ports"]}
            annotations = doc["metadata"]["annotations"]
            assert annotations["nginx.ingress.kubernetes.io/proxy-next-upstream"] == \
                NEXT_UPSTREAM.split(" ", 1)[1].rstrip(";")


def test_compose_ports_names_and_balancer_agree() -> None:
    services = compose()["services"]
    mine = ours(services)
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    workers = {n: s for n, s in mine.items() if s["command"][0] == "worker"}
    ids = [s["command"][s["command"].index("--instance-id") + 1] for s in workers.values()]
    assert len(set(ids)) == len(ids) >= 2
    partitions = int(mine["collector"]["environment"]["SURVEY_RAW_PARTITIONS"])
    assert len(workers) <= partitions
    for name, service in mine.items():
        role = service["command"][0]
        port = {"collector": _flag(service["command"], "--port", 8080),
                "api": _flag(service["command"], "--port", 8081),
                "worker": _flag(service["command"], "--metrics-port", 8082),
                "findings": _flag(service["command"], "--metrics-port", 8083)}.get(role)
        if port is not None:
            assert f"127.0.0.1:{port}/" in " ".join(service["healthcheck"]["test"]), name
    assert mine["api"]["ports"] == [f"{_flag(mine['api']['command'], '--port', 8081)}:8081"]
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    collector_port = _flag(mine["collector"]["command"], "--port", 8080)
    assert f"server collector:{collector_port} " in conf
    listen = re.search(r"listen (\d+)", conf)
    assert listen and services["lb"]["ports"] == [f"8080:{listen.group(1)}"]
    proxy = services["lb"]["networks"]["survey"]["ipv4_address"]
    assert json.loads(mine["collector"]["environment"]["SURVEY_TRUSTED_PROXIES"]) == [proxy]
    assert mine["collector"]["deploy"]["replicas"] >= 2


def test_both_nginx_configs_retry_posts_on_another_collector_and_pass_nginx_t(
    tmp_path: Path,
) -> None:
    generated = (ROOT / "infra" / "nginx" / "start.sh").read_text()
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    assert NEXT_UPSTREAM in generated and NEXT_UPSTREAM in conf
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if nginx is None:
        message = "nginx is not installed (infra/nginx/install.sh)"
        unavailable(message)
    local = tmp_path / "nginx.conf"
    # The service name resolves only inside compose's network; the syntax check needs an address.
    local.write_text(conf.replace("server collector:", "server 127.0.0.1:"))
    checked = subprocess.run(
        [nginx, "-t", "-q", "-p", f"{tmp_path}/", "-e", str(tmp_path / "error.log"),
         "-c", str(local), "-g", f"pid {tmp_path}/nginx.pid;"],
        capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


# The Dockerfile, lint-ish

def _instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
            for line in (raw.strip() for raw in text.splitlines())
            if line and not line.startswith("#")]


def test_dockerfile_is_pinned_unprivileged_and_copies_every_package() -> None:
    instructions = _instructions()
    for op, arg in instructions:
        if op == "FROM":
            image = arg.split()[0]
            assert ":" in image and not image.endswith(":latest"), image
            assert re.search(r":\d+\.\d+\.\d+", image), f"{image}: pin the patch version"
        if op == "RUN":
            assert "pip install" not in arg or "--no-cache-dir" in arg
            assert "apt-get install" not in arg or "--no-install-recommends" in arg
        assert op != "ADD", "COPY, not ADD"
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM"):]
    users = [arg for op, arg in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    entry = [json.loads(arg) for op, arg in final if op == "ENTRYPOINT"]
    assert entry == [list(PYPROJECT["project"]["scripts"])]
    exposed = {int(p) for op, arg in final if op == "EXPOSE" for p in arg.split()}
    assert exposed == {distributed_cli.COLLECTOR_PORT, distributed_cli.API_PORT, 8082}
    copied = {shlex.split(arg)[0] for op, arg in instructions
              if op == "COPY" and not arg.startswith("--from")}
    copied |= {src for op, arg in instructions if op == "COPY" and not arg.startswith("--from")
               for src in shlex.split(arg)[:-1]}
    for src in copied:
        assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in include}
    assert packages <= copied, f"packages not copied into the image: {packages - copied}"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {f"!{src}" for src in copied} <= set(ignore)
    # Every manifest and the compose file run this image, at the project's version.
    images = {c["image"] for _, doc in k8s_docs() if doc["kind"] in WORKLOADS
              for c in pod_spec(doc)["containers"]}
    assert images == {IMAGE}
    assert all(s["build"]["dockerfile"] == "deploy/Dockerfile"
               for s in ours(compose()["services"]).values() if "build" in s)


def test_kubernetes_scrape_config_sends_the_monitor_token() -> None:
    """/metrics of collector and api pods needs a monitor token: the scrape job that keeps them
    sends one, the other job drops them."""
    docs = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in k8s_docs()}
    scrape = yaml.safe_load(
        docs[("ConfigMap", "survey-ingest-scrape")]["data"]["survey-ingest.yml"])
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    authed = jobs["survey-ingest-http"]
    assert authed["authorization"]["type"] == "Bearer"
    assert "authorization" not in jobs["survey-ingest-metrics-ports"]
    for name in ("collector", "api"):
        annotations = docs[("Deployment", name)]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["survey-ingest.io/metrics-auth"] == "bearer", name
    # (Debian's promtool is built without Kubernetes discovery, so it cannot check this file;
    # the relabelling is checked here: keep our annotation in one job, drop it in the other.)
    keep = authed["relabel_configs"][0]
    assert keep["action"] == "keep" and keep["regex"] == "bearer"
    drop = jobs["survey-ingest-metrics-ports"]["relabel_configs"][1]
    assert drop["action"] == "drop" and drop["regex"] == "bearer"
