"""Policy packs: the numbers, lists, patterns and severities behind the controls.

A pack is a folder with `pack.yaml` (parameters and one block per control),
`clauses.yaml` (every clause of the notice, mapped to control IDs or marked
manual) and the notice text. The default pack ships in `audit/packs/default`.
Errors name the file and the key (`PolicyError`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audit.errors import PolicyError

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


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(path.as_posix(), "(file)", "file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise PolicyError(path.as_posix(), where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None


def load_pack(path: str | Path | None = None) -> Pack:
    """Load and check a pack folder (or its pack.yaml). Values are checked against the catalogue."""
    root = Path(path) if path else DEFAULT_PACK
    pack_file = root if root.is_file() else root / "pack.yaml"
    root = pack_file.parent
    label = pack_file.as_posix()
    data = _load_yaml(pack_file)
    if not isinstance(data, dict):
        raise PolicyError(label, "(top level)", "expected a mapping of keys")
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
    if notice_name:
        notice_path = root / notice_name
        if not notice_path.is_file():
            raise PolicyError(label, "notice", f"file {notice_name} not found")
        notice = notice_path.read_text(encoding="utf-8")
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
