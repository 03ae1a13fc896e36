"""deploy/prefect.yaml and deploy/docker-compose.yml: structure, entrypoints, env vars; the example policy."""

import re
from pathlib import Path

import pytest
import torch
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ENTRYPOINT = re.compile(r"[A-Za-z0-9_./-]+\.py:[A-Za-z_][A-Za-z0-9_]*")
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
CONTAINER_VAR = re.compile(r"\$\$\{?([A-Za-z_][A-Za-z0-9_]*)")


@pytest.fixture(scope="module")
def prefect_yaml():
    return yaml.safe_load((DEPLOY / "prefect.yaml").read_text())


@pytest.fixture(scope="module")
def compose_text():
    return (DEPLOY / "docker-compose.yml").read_text()


@pytest.fixture(scope="module")
def compose(compose_text):
    return yaml.safe_load(compose_text)


def test_prefect_yaml_has_definitions_and_one_deployment_per_flow_and_pool(prefect_yaml):
    assert {"work_pools", "schedules"} <= set(prefect_yaml["definitions"])
    deployments = {d["name"]: d for d in prefect_yaml["deployments"]}
    pools = prefect_yaml["definitions"]["work_pools"]
    assert set(deployments) == {"compliance-sweep", "deletion-request", "compliance-sweep-gpu",
                                "deletion-request-gpu"}
    for suffix, pool in (("", "process_pool"), ("-gpu", "gpu_pool")):
        assert deployments["compliance-sweep" + suffix]["entrypoint"] == "flows/sweep.py:compliance_sweep"
        assert deployments["deletion-request" + suffix]["entrypoint"] == "flows/deletion.py:deletion_request"
        for name in ("compliance-sweep" + suffix, "deletion-request" + suffix):
            # the anchor resolved: each deployment uses its shared work pool
            assert deployments[name]["work_pool"] == pools[pool]
    for dep in deployments.values():
        assert ENTRYPOINT.fullmatch(dep["entrypoint"]), dep["entrypoint"]
        assert not dep["entrypoint"].startswith(("/", "../"))


def test_the_gpu_pool_loads_models_on_a_gpu_in_a_known_dtype(prefect_yaml, compose):
    from revs_engine.devices import device_name, parse_dtype

    pools = prefect_yaml["definitions"]["work_pools"]
    gpu, cpu = pools["gpu_pool"]["job_variables"]["env"], pools["process_pool"]["job_variables"]["env"]
    assert device_name(gpu["REVS_DEVICE"]).startswith("cuda")
    assert parse_dtype(gpu["REVS_DTYPE"]) in (torch.bfloat16, torch.float16, torch.float32)
    assert {k: v for k, v in gpu.items() if not k.startswith("REVS_D")} == cpu  # otherwise the same job
    worker = compose["services"]["prefect-worker-gpu"]
    assert worker["profiles"] == ["gpu"]  # not started by a plain `docker compose up`
    assert worker["command"][worker["command"].index("--pool") + 1] == pools["gpu_pool"]["name"]
    assert worker["environment"]["REVS_DEVICE"] == gpu["REVS_DEVICE"]
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_schedules_cron_sweep_on_demand_requests(prefect_yaml):
    deployments = {d["name"]: d for d in prefect_yaml["deployments"]}
    (schedule,) = deployments["compliance-sweep"]["schedules"]
    assert schedule == prefect_yaml["definitions"]["schedules"]["nightly_sweep"]
    assert len(schedule["cron"].split()) == 5
    assert deployments["deletion-request"]["schedules"] == []


def test_prefect_yaml_uses_anchors_not_copies():
    text = (DEPLOY / "prefect.yaml").read_text()
    assert "&process_pool" in text
    assert text.count("*process_pool") == 2
    assert "&gpu_pool" in text
    assert text.count("*gpu_pool") == 2
    assert "*nightly_sweep" in text


def test_compose_has_the_services_with_healthchecks_and_volumes(compose):
    services = compose["services"]
    assert {"prefect-server", "prefect-db", "prefect-worker", "mlflow", "mlflow-db"} <= set(services)
    for name, svc in services.items():
        assert "healthcheck" in svc, name
    assert services["prefect-server"]["environment"]["PREFECT_SERVER_API_HOST"] == "0.0.0.0"
    server_env = services["prefect-server"]["environment"]
    assert server_env["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    assert "--artifacts-destination /mlartifacts" in " ".join(services["mlflow"]["command"])
    assert services["prefect-worker"]["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    declared = set(compose["volumes"])
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/", "$")):
                assert source in declared, (name, source)
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, (name, dep)


def test_every_compose_interpolation_has_a_default_or_a_required_message(compose_text):
    refs = INTERPOLATION.findall(compose_text)
    assert refs, "expected the passwords to come from the environment"
    for name, modifier in refs:
        assert modifier.startswith((":-", "-", ":?")), f"${{{name}}} has neither a default nor ':?message'"
        if modifier.startswith(":?"):
            assert len(modifier) > 2, f"${{{name}}}: give the ':?' error a message"
    assert not re.search(r"(?<!\$)\$[A-Za-z_]", compose_text), "bare $VAR: use ${VAR...} or $$VAR"


def test_container_variables_used_in_commands_are_defined_in_that_service(compose):
    for name, svc in compose["services"].items():
        env = svc.get("environment", {})
        used = set()
        for key in ("command", "healthcheck", "entrypoint"):
            used |= set(CONTAINER_VAR.findall(yaml.safe_dump(svc.get(key, ""))))
        missing = used - set(env)
        assert not missing, (name, missing)


def test_no_secret_literal_in_compose(compose):
    for name, svc in compose["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if "PASSWORD" in key or "CONNECTION_URL" in key or "BACKEND_STORE_URI" in key:
                assert "${" in str(value), (name, key)
