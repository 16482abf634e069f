"""Policy packs: the numbers, lists, patterns and severities behind the controls.

A pack is a folder with `pack.yaml` (parameters and one block per control),
`clauses.yaml` (every clause of the notice, mapped to control IDs or marked
manual) and the notice text. The default pack ships in `audit/packs/default`.
Errors name the file and the key (`PolicyError`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audit.errors import PolicyError, first_line

DEFAULT_PACK = Path(__file__).parent / "packs" / "default"
SEVERITIES = ("critical", "high", "medium", "low")
TOP_KEYS = {"pack", "title", "notice", "clauses", "parameters", "controls"}
CLAUSE_KEYS = {"id", "section", "quote", "controls", "manual"}


@dataclass(frozen=True)
class Clause:
    id: str
    section: str
    quote: str
    controls: tuple[str, ...]
    manual: str | None  # why no automated control covers it, when none does


@dataclass
class Pack:
    path: Path
    name: str
    title: str
    parameters: dict[str, Any]
    controls: dict[str, dict[str, Any]]  # control id -> {severity, params...}
    clauses: list[Clause]
    notice: str
    digest: str = ""
    files: list[Path] = field(default_factory=list)

    def severity(self, control_id: str) -> str:
        return self.controls[control_id]["severity"]

    def value(self, control_id: str, name: str) -> Any:
        """A parameter for a control: its own block first, then shared `parameters` (dotted)."""
        block = self.controls[control_id]
        if name in block:
            return block[name]
        node: Any = self.parameters
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(name)
            node = node[part]
        return node


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors and aliases (`&name`, `*name`).

    A pack or a waivers file never needs them, and nested aliases expand
    exponentially ("billion laughs": 4 KB of YAML, billions of values for
    whatever walks the result). Refused where they appear, with their line.
    """

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise RefusedYAML(None, None, "YAML anchors and aliases (&name, *name) are not allowed; write the "
                                          "values out", event.start_mark)
        return super().compose_node(parent, index)


class RefusedYAML(yaml.composer.ComposerError):
    """Valid YAML that StrictLoader refuses (an anchor or an alias)."""


# What a scalar of each implicit type must be, for messages about one that cannot be built.
_SCALAR_KINDS = {"tag:yaml.org,2002:timestamp": "date (YYYY-MM-DD)", "tag:yaml.org,2002:int": "whole number",
                 "tag:yaml.org,2002:float": "number"}


def _read_text(path: Path, label: str) -> str:
    """A pack file's text; a missing, special (FIFO, device) or non-UTF-8 file is a PolicyError."""
    if not path.is_file():
        raise PolicyError(label, None, "file not found" if not path.exists() else "not a regular file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(label, None, f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                                       f"{exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise PolicyError(label, None, f"cannot be read ({exc.strerror or exc})") from None


def _load_yaml(path: Path) -> Any:
    """A pack file's YAML: no anchors or aliases, no key twice in a mapping, no .inf/.nan, only real dates."""
    label = path.as_posix()
    text = _read_text(path, label)
    loader = None
    try:
        loader = StrictLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_node(loader, node, None, label)
        return loader.construct_document(node)
    except RefusedYAML as exc:
        raise PolicyError(label, None, exc.problem, exc.problem_mark.line + 1) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        why = exc.problem or exc.context or "syntax error"
        raise PolicyError(label, None, f"not valid YAML: {why}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise PolicyError(label, None, f"not valid YAML: {first_line(exc)}") from None
    except RecursionError:
        raise PolicyError(label, None, "not valid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_node(loader: StrictLoader, node: yaml.Node, key: str | None, label: str) -> None:
    """Refuse, naming key and line: a key given twice, a scalar that cannot be built (2023-13-01), .inf and .nan.

    PyYAML lets the last of two equal keys win silently, and builds `.inf`,
    `.nan` and impossible dates into values (or a ValueError) far from the line.
    """
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for knode, vnode in node.value:
            name = str(knode.value) if isinstance(knode, yaml.ScalarNode) else "?"
            sub = f"{key}.{name}" if key else name
            if name in seen and name != "?":
                raise PolicyError(label, sub, f"given twice (first at line {seen[name]})", knode.start_mark.line + 1)
            seen[name] = knode.start_mark.line + 1
            _check_node(loader, vnode, sub, label)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_node(loader, item, f"{key or ''}[{i}]", label)
    elif node.tag in _SCALAR_KINDS:
        try:
            value = loader.construct_object(node)
        except (ValueError, OverflowError) as exc:
            raise PolicyError(label, key, f"{node.value!r} is not a valid {_SCALAR_KINDS[node.tag]} ({exc})",
                              line) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise PolicyError(label, key, f"expected a finite number, got {node.value}", line)


def load_pack(path: str | Path | None = None) -> Pack:
    """Load and check a pack folder (or its pack.yaml). Values are checked against the catalogue."""
    root = Path(path) if path else DEFAULT_PACK
    pack_file = root if root.is_file() else root / "pack.yaml"
    root = pack_file.parent
    label = pack_file.as_posix()
    data = _load_yaml(pack_file)
    if not isinstance(data, dict):
        raise PolicyError(label, None, "expected a mapping of keys at the top level")
    for key in data:
        if key not in TOP_KEYS:
            raise PolicyError(label, str(key), f"unknown key; expected one of {', '.join(sorted(TOP_KEYS))}")
    for key in ("pack", "controls"):
        if key not in data:
            raise PolicyError(label, key, "missing")
    params = data.get("parameters") or {}
    if not isinstance(params, dict):
        raise PolicyError(label, "parameters", "expected a mapping")
    controls = data["controls"]
    if not isinstance(controls, dict) or not controls:
        raise PolicyError(label, "controls", "expected a mapping of control IDs")
    for cid, block in controls.items():
        if not isinstance(block, dict):
            raise PolicyError(label, f"controls.{cid}", "expected a mapping with at least `severity`")
        sev = block.get("severity")
        if sev not in SEVERITIES:
            raise PolicyError(label, f"controls.{cid}.severity", f"expected one of {', '.join(SEVERITIES)}, got {sev!r}")
    files = [pack_file]
    notice_name = data.get("notice")
    notice = ""
    for key in ("notice", "clauses"):
        if data.get(key) and not isinstance(data[key], str):
            raise PolicyError(label, key, f"expected a file name, got {data[key]!r}")
    if notice_name:
        notice_path = root / notice_name
        if not notice_path.is_file():
            raise PolicyError(label, "notice", f"file {notice_name} not found")
        notice = _read_text(notice_path, notice_path.as_posix())
        files.append(notice_path)
    clauses: list[Clause] = []
    if data.get("clauses"):
        clause_path = root / data["clauses"]
        files.append(clause_path)
        clauses = _load_clauses(clause_path, set(controls))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    pack = Pack(root, str(data["pack"]), str(data.get("title", data["pack"])), params,
                {str(k): dict(v) for k, v in controls.items()}, clauses, notice, digest.hexdigest(), files)
    for key, value in _walk(params, "parameters"):
        _check_value(label, key, value)
    for cid, block in pack.controls.items():
        for name, value in block.items():
            if name != "severity":
                _check_value(label, f"controls.{cid}.{name}", value)
    return pack


def _walk(node: Any, prefix: str):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{prefix}.{k}") if isinstance(v, dict) and not _is_mapping_param(k) else [(f"{prefix}.{k}", v)]
    else:
        yield prefix, node


def _is_mapping_param(name: str) -> bool:
    return name.startswith("roles_by_")


def _check_value(label: str, key: str, value: Any) -> None:
    """Check a value by the naming convention of its key; the catalogue checks presence."""
    name = key.rsplit(".", 1)[-1]
    if name.endswith(("_days", "_years")):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise PolicyError(label, key, f"expected a whole number >= 0, got {value!r}")
    elif name.endswith(("_from", "_until")):
        if not isinstance(value, dt.date):
            raise PolicyError(label, key, f"expected a date (YYYY-MM-DD), got {value!r}")
    elif key.startswith("parameters.patterns."):
        if not isinstance(value, str):
            raise PolicyError(label, key, f"expected a regular expression, got {value!r}")
        try:
            re.compile(value)
        except re.error as exc:
            raise PolicyError(label, key, f"not a valid regular expression ({exc})") from None
    elif _is_mapping_param(name):
        if not isinstance(value, dict) or not all(
            isinstance(v, list) and all(isinstance(i, str) for i in v) for v in value.values()
        ):
            raise PolicyError(label, key, "expected a mapping of table name to a list of roles")
    elif isinstance(value, list):
        if not all(isinstance(i, str) for i in value):
            raise PolicyError(label, key, "expected a list of text values")
    elif not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise PolicyError(label, key, f"unsupported value {value!r}")


def _load_clauses(path: Path, control_ids: set[str]) -> list[Clause]:
    label = path.as_posix()
    data = _load_yaml(path)
    items = data.get("clauses") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise PolicyError(label, "clauses", "expected a list of clauses")
    seen: set[str] = set()
    out = []
    for i, item in enumerate(items):
        key = f"clauses[{i}]"
        if not isinstance(item, dict):
            raise PolicyError(label, key, "expected a mapping")
        for k in item:
            if k not in CLAUSE_KEYS:
                raise PolicyError(label, f"{key}.{k}", "unknown key")
        for k in ("id", "section", "quote"):
            if not item.get(k):
                raise PolicyError(label, f"{key}.{k}", "missing")
        cid = str(item["id"])
        if cid in seen:
            raise PolicyError(label, f"{key}.id", f"duplicate clause id {cid}")
        seen.add(cid)
        ctl = item.get("controls") or []
        if not isinstance(ctl, list):
            raise PolicyError(label, f"{key}.controls", "expected a list of control IDs")
        for c in ctl:
            if c not in control_ids:
                raise PolicyError(label, f"{key}.controls", f"unknown control {c}")
        manual = item.get("manual")
        if not ctl and not manual:
            raise PolicyError(label, f"{key}.manual", "a clause with no controls must say why (manual: ...)")
        out.append(Clause(cid, str(item["section"]), " ".join(str(item["quote"]).split()),
                          tuple(ctl), str(manual) if manual else None))
    return out
