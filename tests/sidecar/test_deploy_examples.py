"""The deployment examples in sidecar/ agree with each other and with the code."""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

SIDECAR = Path(__file__).resolve().parents[2] / "sidecar"


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_ecs_task_shares_the_socket_volume_and_drains_in_time() -> None:
    task = json.loads((SIDECAR / "ecs" / "task-definition.json").read_text())
    containers: dict[str, Any] = {c["name"]: c for c in task["containerDefinitions"]}
    sidecar, orchestrator = containers["mangaroute-sidecar"], containers["orchestrator"]
    listen = _flag(sidecar["command"], "--listen")
    socket = listen.removeprefix("unix:")
    (mount,) = sidecar["mountPoints"]
    assert socket.startswith(mount["containerPath"] + "/")
    assert mount in orchestrator["mountPoints"]
    assert {"name": mount["sourceVolume"]} in task["volumes"]
    assert {"name": "MANGAROUTE_SIDECAR", "value": listen} in orchestrator["environment"]
    assert sidecar["user"] == orchestrator["user"]  # the socket is owner-only (0600)
    assert sidecar["stopTimeout"] > float(_flag(sidecar["command"], "--grace-s"))
    assert sidecar["healthCheck"]["command"][-1] == listen
    probe = sidecar["healthCheck"]["command"][sidecar["healthCheck"]["command"].index("-m") + 1]
    importlib.import_module(probe)
    assert {"containerName": "mangaroute-sidecar", "condition": "HEALTHY"} in orchestrator[
        "dependsOn"
    ]


def test_dockerfile_matches_the_task_definition() -> None:
    dockerfile = (SIDECAR / "Dockerfile").read_text()
    task = json.loads((SIDECAR / "ecs" / "task-definition.json").read_text())
    sidecar = task["containerDefinitions"][0]
    volume = re.search(r'VOLUME \["([^"]+)"\]', dockerfile)
    assert volume is not None
    assert volume.group(1) == sidecar["mountPoints"][0]["containerPath"]
    assert f"USER {sidecar['user']}" in dockerfile
    assert 'ENTRYPOINT ["mangaroute"]' in dockerfile


def test_node_client_is_locked() -> None:
    package = json.loads((SIDECAR / "node-client" / "package.json").read_text())
    lock = json.loads((SIDECAR / "node-client" / "package-lock.json").read_text())
    assert set(package["dependencies"]) == {"@grpc/grpc-js", "@grpc/proto-loader"}
    for name in package["dependencies"]:
        assert f"node_modules/{name}" in lock["packages"]


def test_the_examples_serve_a_mounted_config_not_the_demo() -> None:
    dockerfile = (SIDECAR / "Dockerfile").read_text()
    task = json.loads((SIDECAR / "ecs" / "task-definition.json").read_text())
    sidecar = task["containerDefinitions"][0]
    image_env = re.search(r"MANGAROUTE_CONFIG=(\S+)", dockerfile)
    assert image_env is not None
    assert {"name": "MANGAROUTE_CONFIG", "value": image_env.group(1)} in sidecar["environment"]
    assert "pip wheel --no-cache-dir --wheel-dir /wheels '.[sidecar]'" in dockerfile  # gRPC
    copied = re.search(r"^COPY (.*) \./$", dockerfile, re.MULTILINE)
    assert copied is not None
    project = tomllib.loads((SIDECAR.parent / "pyproject.toml").read_text())["project"]
    for needed in ("pyproject.toml", project["readme"], *project["license-files"]):
        assert needed in copied.group(1).split()  # the wheel is built from these
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd is not None
    for command in (json.loads(cmd.group(1)), sidecar["command"]):
        assert "--demo" not in command and "--config" not in command
        assert _flag(command, "--metrics") == "emf"  # awslogs carries EMF to CloudWatch
