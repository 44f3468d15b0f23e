"""JSON Schemas (draft 2020-12) and Markdown references of the TOML files mangaroute reads,
built from their declared sections.

Each file is a :class:`TomlDocument`: its root section, the schema's title, the file the
package ships under ``mangaroute/data`` and the lines around its reference in the docs. The
router config is :data:`CONFIG` (``config.schema.json``, printed by ``mangaroute config
schema`` with any part a plugin registered in the process; docs/config.md); planning
profiles and simulator scenarios declare theirs beside their readers. Tests keep each
shipped file equal to :func:`schema_text` and each reference equal to
:func:`reference_markdown`. Editors read a schema from a ``#:schema`` comment at the top of
a TOML file (docs/config.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from mangaroute.config import FILTERS, PICKERS, RANKERS, ROOT, part_params
from mangaroute.config.sections import PROFILE, Key, Section
from mangaroute.core.limits import LIMITS

DRAFT = "https://json-schema.org/draft/2020-12/schema"

REFERENCE_MARK = "<!-- generated from mangaroute/config/sections.py: do not edit below -->"
"""docs/config.md holds :func:`reference_markdown` after this line (a test compares them)."""


@dataclass(frozen=True)
class TomlDocument:
    """A kind of TOML file mangaroute reads, as its schema and its reference present it.

    ``file`` is the schema's name under ``mangaroute/data``; ``defs`` the sections other
    keys refer to as ``#/$defs/NAME``; the docs hold the reference after the line ``mark``,
    up to the line ``end`` (``""``: to the end of the document).
    """

    root: Section
    title: str
    description: str
    file: str
    mark: str
    end: str = ""
    defs: tuple[tuple[str, Section], ...] = ()


CONFIG = TomlDocument(
    ROOT,
    "mangaroute router configuration",
    "A mangaroute router config (TOML). Reference: docs/config.md.",
    "config.schema.json",
    REFERENCE_MARK,
    defs=(("profile", PROFILE),),
)
"""The router config."""


def json_schema(of: TomlDocument = CONFIG, *, shipped_parts_only: bool = False) -> dict[str, Any]:
    """The whole file's schema: every declared section, ranges from LIMITS, the names the
    registries know as enums; ``shipped_parts_only`` leaves out parts plugins registered."""
    schema: dict[str, Any] = {"$schema": DRAFT, "title": of.title}
    schema.update(_section(of.root, shipped_parts_only))
    schema["description"] = of.description
    if of.defs:
        schema["$defs"] = {name: _section(s, shipped_parts_only) for name, s in of.defs}
    return schema


def schema_text(of: TomlDocument = CONFIG, *, shipped_parts_only: bool = False) -> str:
    """:func:`json_schema` as the text of the published file."""
    return json.dumps(json_schema(of, shipped_parts_only=shipped_parts_only), indent=2) + "\n"


def published_schema_text(of: TomlDocument = CONFIG) -> str:
    """The schema file the package ships."""
    return resources.files("mangaroute").joinpath("data", of.file).read_text("utf-8")


def _section(section: Section, shipped_only: bool) -> dict[str, Any]:
    properties = {key.name: _key(key, shipped_only) for key in section.keys}
    if section.parts:
        shipped = set(FILTERS) | set(RANKERS) | set(PICKERS)
        for name in sorted(_part_names(section)):
            if shipped_only and name not in shipped:
                continue
            params = part_params(name)
            if params is None:
                properties[name] = {"type": "object", "description": f"settings of {name}"}
            else:
                properties[name] = _section(params, shipped_only)
    result: dict[str, Any] = {
        "type": "object",
        "description": f"{section.title}: {section.description} Read by {section.read_by}.",
        "properties": properties,
        "additionalProperties": False,
    }
    required = [key.name for key in section.keys if key.required]
    if required:
        result["required"] = required
    return result


def _part_names(section: Section) -> set[str]:
    names: set[str] = set()
    for key in section.keys:
        if key.name in ("filters", "ranker", "picker"):
            names.update(key.names())
    return names


def _key(key: Key, shipped_only: bool) -> dict[str, Any]:
    if key.schema is not None:
        result = dict(key.schema)
    elif key.kind in ("number", "integer"):
        result = {"type": key.kind}
        if key.limit is not None:
            limit = LIMITS[key.limit]
            result["exclusiveMinimum" if limit.low_open else "minimum"] = _plain(limit.low)
            result["exclusiveMaximum" if limit.high_open else "maximum"] = _plain(limit.high)
    elif key.kind == "string":
        result = {"type": "string", "minLength": 1}
    elif key.kind == "bool":
        result = {"type": "boolean"}
    elif key.kind == "names":
        item: dict[str, Any] = {"type": "string", "minLength": 1}
        if key.names():
            item["enum"] = _names(key, shipped_only)
        result = {"type": "array", "items": item}
    elif key.kind == "enum":
        result = {"type": "string", "enum": _names(key, shipped_only)}
    elif key.kind == "table":
        assert key.section is not None
        result = _section(key.section, shipped_only)
    elif key.kind == "array":
        assert key.section is not None
        result = {"type": "array", "items": _section(key.section, shipped_only)}
    else:  # tables
        assert key.section is not None
        result = {"type": "object", "additionalProperties": _section(key.section, shipped_only)}
    description = _describe(key)
    if description:
        result["description"] = description
    tables = ("table", "tables", "array")
    if key.default is not None and not key.default_doc and key.kind not in tables:
        result["default"] = list(key.default) if isinstance(key.default, tuple) else key.default
    return result


def _names(key: Key, shipped_only: bool) -> list[str]:
    names = list(key.names())
    if shipped_only and key.name in ("filters", "ranker", "picker", "within"):
        kinds = {"filters": FILTERS, "ranker": RANKERS, "within": RANKERS, "picker": PICKERS}
        shipped = kinds[key.name]
        names = [name for name in names if name in shipped]
    return names


def _describe(key: Key) -> str:
    """The key's description, its range in words and a computed default's rule."""
    parts = [key.description] if key.description else []
    if key.limit is not None:
        parts.append(LIMITS[key.limit].describe())
    if key.default_doc:
        parts.append(f"default: {key.default_doc}")
    return "; ".join(parts)


def _plain(bound: float) -> float | int:
    return int(bound) if bound.is_integer() else bound


def reference_markdown(root: Section = ROOT) -> str:
    """Every section and key of the file whose root is ``root`` as Markdown: kind, default,
    range, what reads it."""
    lines: list[str] = []
    for section in _every_section(root):
        lines += [
            "",
            f"### `{section.title}`",
            "",
            f"{section.description} Read by `{section.read_by}`.",
            "",
        ]
        if section.parts:
            lines += ["It may also hold the table of each part it uses (below).", ""]
        if not section.keys:
            continue
        lines += ["| key | kind | default | range or values | meaning |", "|---|---|---|---|---|"]
        for key in section.keys:
            cells = [f"`{key.name}`", _kind(key), _default(key), _values(key), key.description]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines).lstrip("\n") + "\n"


def _every_section(root: Section) -> list[Section]:
    """The sections in reading order, each once: the file's, depth first, then each shipped
    part's table if a section holds parts."""
    found: list[Section] = []

    def visit(section: Section) -> None:
        if section in found:
            return
        found.append(section)
        for key in section.keys:
            if key.section is not None:
                visit(key.section)

    visit(root)
    if not any(section.parts for section in found):
        return found
    for name in (*FILTERS, *RANKERS, *PICKERS):
        params = part_params(name)
        if params is not None:
            visit(params)
    return found


def _kind(key: Key) -> str:
    names = {"bool": "true / false", "names": "list of names", "enum": "one of", "other": ""}
    if key.kind == "tables":
        return "tables by name"
    if key.kind == "array":
        return "array of tables"
    if key.kind == "other":
        return str((key.schema or {}).get("type", "name or table"))
    return names.get(key.kind, key.kind)


def _default(key: Key) -> str:
    if key.required:
        return "required"
    if key.default_doc:
        return key.default_doc
    if key.default is None or key.kind in ("table", "tables", "array"):
        return ""
    return f"`{json.dumps(list(key.default) if isinstance(key.default, tuple) else key.default)}`"


def _values(key: Key) -> str:
    if key.limit is not None:
        return LIMITS[key.limit].describe()
    if key.names():
        return ", ".join(f"`{name}`" for name in _names(key, shipped_only=True))
    return ""


def with_reference(document: str, of: TomlDocument = CONFIG) -> str:
    """``document`` (docs/config.md for the config) with its reference, between ``of.mark``
    and ``of.end``, replaced by the current :func:`reference_markdown`."""
    head, rest = document.split(of.mark, 1)
    tail = f"\n{of.end}{rest.split(of.end, 1)[1]}" if of.end else ""
    return f"{head}{of.mark}\n\n{reference_markdown(of.root)}{tail}"
