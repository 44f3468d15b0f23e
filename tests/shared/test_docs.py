"""The shared-state examples in README.md and docs/shared.md run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mangaroute import Router
from mangaroute.config import default_config_text, parse_config
from tests.shared.test_cli import _config

ROOT = Path(__file__).resolve().parents[2]


def _blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.S)


def test_the_readme_example_joins_the_fleet(
    tmp_path: Path, redis_url: str, deployment: str
) -> None:
    block = next(b for b in _blocks(ROOT / "README.md", "python") if "SharedState" in b)
    router = Router(parse_config(_config(tmp_path, redis_url, deployment).read_text()))
    namespace: dict[str, Any] = {"router": router}
    exec(compile(block, "README.md", "exec"), namespace)
    shared = namespace["shared"]
    try:
        assert shared.sync_now()
        assert router.fleet is not None and router.fleet.replicas == 1
    finally:
        shared.close()
    assert router.fleet is None


def test_the_guide_config_and_example_run(
    tmp_path: Path, redis_url: str, deployment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    guide = ROOT / "docs" / "shared.md"
    table = next(b for b in _blocks(guide, "toml") if "[shared]" in b)
    config = parse_config(default_config_text() + "\n" + table)
    assert config.shared is not None
    assert config.shared.deployment == "mangaassist-prod"
    assert config.shared.password_env == "REDIS_AUTH"
    local = (
        table.replace(config.shared.url, redis_url)
        .replace("mangaassist-prod", deployment)
        .replace('password_env = "REDIS_AUTH"', "")
    )
    path = tmp_path / "mangaassist.toml"
    path.write_text(default_config_text() + "\n" + local)
    monkeypatch.chdir(tmp_path)
    code = next(b for b in _blocks(guide, "python") if "SharedState" in b).replace("...", "pass")
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/shared.md", "exec"), namespace)
    assert namespace["router"].fleet is None  # closed at the end of the example
