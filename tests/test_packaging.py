"""The wheel a user installs holds what the repository ships: every module and data file of
the package (scenarios, traces, the example configs, type information), the license, and
metadata that says what it needs - and nothing of the tests."""

from __future__ import annotations

import email
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import mangaroute

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    subprocess.run([*command, "--wheel-dir", str(out), str(ROOT)], check=True, capture_output=True)
    (built,) = out.glob("mangaroute-*.whl")
    return zipfile.ZipFile(built)


def _shipped() -> set[str]:
    """The package's files under version control."""
    listed = subprocess.run(
        ["git", "ls-files", "mangaroute"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    return set(listed)


@pytest.mark.slow
def test_the_wheel_holds_every_file_of_the_package_and_no_tests(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    missing = sorted(_shipped() - names)
    assert not missing, f"not in the wheel: {missing}"
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    assert "mangaroute/py.typed" in names
    assert "mangaroute/data/scenarios/default.toml" in names


@pytest.mark.slow
def test_the_wheel_carries_the_license_and_honest_metadata(wheel: zipfile.ZipFile) -> None:
    info = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    meta = email.message_from_bytes(wheel.read(info))
    assert meta["Name"] == "mangaroute" and meta["Version"] == mangaroute.__version__
    assert meta["License-Expression"] == "Apache-2.0"
    requires = meta.get_all("Requires-Dist") or []
    assert "boto3>=1.38" in requires
    core = [r for r in requires if "extra ==" not in r]
    assert not [r for r in core if r.startswith(("grpcio", "protobuf"))]  # the sidecar extra's
    licenses = [n for n in wheel.namelist() if ".dist-info/licenses/" in n]
    assert [Path(n).name for n in licenses] == ["LICENSE"]
    assert wheel.read(licenses[0]) == (ROOT / "LICENSE").read_bytes()
