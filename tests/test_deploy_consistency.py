"""deploy/ cannot run here (no Docker engine), so read it against the code: same entrypoints, same variables."""
import re
from pathlib import Path

import yaml

from devstack.stack import SERVICES

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
NAMEKO_VARS = set(re.findall(r"\$\{([A-Z_]+)", (DEPLOY / "nameko.yaml").read_text()))
SIMULATOR_VARS = {"MONGO_URI", "MONGO_DB_PREFIX", "SIM_PORT", "SIM_HOST"}


def dockerfile_targets():
    """target name -> CMD (as a list) from deploy/Dockerfile."""
    targets, current = {}, None
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if match := re.match(r"FROM \S+ AS (\S+)", line):
            current = match.group(1)
        elif line.startswith("CMD ") and current:
            targets[current] = yaml.safe_load(line[4:])
    return targets


def test_every_service_has_an_image_running_the_same_entrypoint_as_make_run():
    targets = dockerfile_targets()
    for name, entrypoint in {**SERVICES, "gateway": "gateway.service:GatewayService"}.items():
        assert targets.get(name) == [entrypoint], name
    assert targets["simulators"] == ["python", "-m", "simulators"]


def test_compose_builds_every_service_from_its_target_with_known_variables():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    targets = dockerfile_targets()
    for name in [*SERVICES, "gateway", "simulators"]:
        assert compose[name]["build"]["target"] == name and name in targets
        env = set(compose[name]["environment"])
        known = SIMULATOR_VARS if name == "simulators" else NAMEKO_VARS
        assert env <= known, (name, env - known)
    assert compose["mongo"]["image"] == "mongo:7" and "--replSet" in compose["mongo"]["command"]
    assert compose["rabbitmq"]["image"].startswith("rabbitmq:3.13")


def test_make_run_sets_only_variables_the_config_reads():
    from devstack.stack import Stack

    env = Stack(run_dir=Path("/tmp"), mongo_uri="mongodb://x", amqp_uri="pyamqp://x").env("identity")
    ours = {k for k in env if k.isupper() and k not in __import__("os").environ}
    assert ours - {"SERVICE_NAME", "PYTHONUNBUFFERED", "PYTHONWARNINGS"} <= NAMEKO_VARS | SIMULATOR_VARS
