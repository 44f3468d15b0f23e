"""The generated code is what the pinned script makes from the .proto today, and the wire
enums cover the core's."""

from __future__ import annotations

import filecmp
import importlib.util
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from mangaroute import BreakerState, Outcome, Pattern
from mangaroute.sidecar import convert
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "mangaroute" / "sidecar" / "_generated"
NODE_BIN = ROOT / "sidecar" / "node-client" / "node_modules" / ".bin"


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _generator() -> str | None:
    """The installed grpcio-tools version, if any."""
    if importlib.util.find_spec("grpc_tools") is None:
        return None
    return metadata.version("grpcio-tools")


_SCRIPT = (ROOT / "scripts" / "gen_proto.py").read_text()
PIN = re.findall(r'^GRPCIO_TOOLS = "(.+)"$', _SCRIPT, re.MULTILINE)[0]


@pytest.mark.skipif(
    _generator() != PIN,
    reason=f"the pinned generator is not installed: pip install grpcio-tools=={PIN} (it needs "
    "protobuf<6; pip install -e '.[test]' installs it)",
)
def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    fresh, committed = _tree(out), _tree(GENERATED)
    assert sorted(fresh) == sorted(committed)
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert stale == [], f"stale generated code {stale}: run python scripts/gen_proto.py"
    assert not filecmp.dircmp(out, GENERATED).diff_files


def test_every_core_enum_has_a_wire_value() -> None:
    assert set(convert.PATTERNS) == set(Pattern)
    assert set(convert.BREAKER_STATES) == set(BreakerState)
    assert set(convert.OUTCOMES.values()) == set(Outcome)
    wire_patterns = set(pb.Pattern.keys()) - {"PATTERN_UNSPECIFIED"}
    assert wire_patterns == {f"PATTERN_{p.name}" for p in Pattern}


def test_the_proto_names_the_package_and_service() -> None:
    service = pb.DESCRIPTOR.services_by_name["Router"]
    assert service.full_name == "mangaroute.v1.Router"
    assert pb.DESCRIPTOR.name == "mangaroute_api/v1/router.proto"
    streaming = {m.name: (m.client_streaming, m.server_streaming) for m in service.methods}
    assert streaming == {
        "Choose": (False, False),
        "Report": (False, False),
        "ReportStream": (True, False),
        "Release": (False, False),
        "GetSnapshot": (False, False),
        "WatchSwitches": (False, True),
        "WatchEvents": (False, True),
        "Eject": (False, False),
        "Restore": (False, False),
        "PinPrimary": (False, False),
        "UnpinPrimary": (False, False),
    }


def test_the_core_still_imports_no_grpc() -> None:
    code = (
        "import sys, mangaroute, mangaroute.cli\n"
        "import mangaroute.sidecar.cli\n"  # registering `serve` must not import grpc either
        "assert not [m for m in sys.modules if m.split('.')[0] in ('grpc', 'google')], "
        "sorted(m for m in sys.modules if m.startswith(('grpc', 'google')))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _fields(message: Any) -> list[tuple[str, int, int, str | None, bool]]:
    return [
        (f.name, f.number, f.type, f.containing_oneof and f.containing_oneof.name, f.has_presence)
        for f in message.DESCRIPTOR.fields
    ]


@pytest.mark.parametrize(
    ("own", "twin"),
    [(pb.ReportStreamRequest, pb.ReportRequest), (pb.WatchSwitchesResponse, pb.SwitchEvent)],
)
def test_per_rpc_messages_keep_the_wire_of_the_shared_ones(own: Any, twin: Any) -> None:
    """``ReportStream`` and ``WatchSwitches`` have messages of their own (buf's
    RPC_REQUEST_RESPONSE_UNIQUE), with the fields of the messages they used before: names,
    numbers, types, oneofs and presence, so a client generated from the older file still
    works."""
    assert _fields(own) == _fields(twin)
    assert len(_fields(own)) >= 5


def test_the_proto_names_packages_for_other_languages() -> None:
    options = pb.DESCRIPTOR.GetOptions()
    assert options.go_package.endswith("/mangaroute/v1;mangaroutev1")
    assert options.java_package == "dev.mangaroute.v1"
    assert options.java_multiple_files is True


BUF = shutil.which("buf") or shutil.which("buf", path=str(NODE_BIN))


@pytest.mark.skipif(
    BUF is None,
    reason="buf is not installed: npm ci --prefix sidecar/node-client (a devDependency)",
)
def test_buf_lint_is_clean() -> None:
    """The API follows buf's STANDARD lint rules, with the exceptions buf.yaml explains."""
    assert BUF is not None
    result = subprocess.run(
        [BUF, "lint"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    assert "- STANDARD" in (ROOT / "buf.yaml").read_text()
