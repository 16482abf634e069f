"""Loading a policy pack: the folder that carries one notice whole (docs/policy-packs.md).

    pack.yaml       name, title, version, file names, parameters, and every control in report order
    notice.txt      the notice text
    clauses.yaml    every clause of the notice, mapped to control ids or marked manual
    contract.yaml   the data contract (audit/pack/contract.py)
    controls/       one <ID>.sql per control (audit/pack/controls.py)
    templates/      generic controls that control files instantiate

`inspect_pack` reads it all and lists every problem found (`audit pack check`
adds the SQL bound on an empty export, audit/pack/tools.py); `load_pack`
raises the first. Errors name file, key and line (`PolicyError`). A pack is
read and rendered once per run.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from audit.errors import PolicyError, first_line
from audit.pack.contract import Contract, load_contract
from audit.pack.controls import SEVERITIES, Control, apply_clauses, load_controls
from audit.pack.yamlfile import Lines, load_yaml, read_text

PACKS = Path(__file__).resolve().parent.parent / "packs"
DEFAULT_PACK = PACKS / "default"
TOP_KEYS = {"pack", "title", "version", "notice", "clauses", "contract", "parameters", "controls"}
CLAUSE_KEYS = {"id", "section", "quote", "controls", "manual"}
BLOCK_KEYS = ("severity", "off")
CURRENCY = re.compile(r"[A-Z]{3}\Z")  # `currency`: an ISO 4217 code, printed beside amounts


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
    controls: dict[str, dict[str, Any]]  # control id -> {severity, params...} or {off: reason}, report order
    clauses: list[Clause]
    notice: str
    contract: Contract = field(default_factory=lambda: Contract({}))
    catalogue: dict[str, Control] = field(default_factory=dict)  # the pack's control files, by id
    version: str = ""
    digest: str = ""
    files: list[Path] = field(default_factory=list)

    def severity(self, control_id: str) -> str:
        """The pack's severity for a control, else the control's own default."""
        return self.controls[control_id].get("severity") or self.catalogue[control_id].severity

    def off(self, control_id: str) -> str | None:
        """Why the pack turns a control off (reported `not_applicable`), or None when it is evaluated."""
        return self.controls[control_id].get("off")

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


def load_pack(path: str | Path | None = None) -> Pack:
    """Load and check a pack folder (or its pack.yaml); the first problem raises PolicyError."""
    pack, errors = inspect_pack(path)
    if errors:
        raise errors[0]
    return pack


_LOADED: dict[tuple, Pack] = {}


def load_pack_cached(path: str | Path | None = None) -> Pack:
    """`load_pack`, remembered in this process while no file under the pack folder changes.

    For readers that open the same pack again and again (the report's notebooks
    share a kernel, one after the other, and each opens the run). The key is every file's path, size
    and modification time, so an edited pack is loaded again. Callers must not
    change the Pack they get.
    """
    root = Path(path) if path else DEFAULT_PACK
    folder = (root if root.is_dir() else root.parent).resolve()
    try:
        key = (str(folder), tuple(sorted((str(f.relative_to(folder)), st.st_size, st.st_mtime_ns)
                                         for f in folder.rglob("*") if f.is_file() for st in [f.stat()])))
    except OSError:  # a file vanished while listing: load it plainly, and say what is wrong if anything is
        return load_pack(path)
    if key not in _LOADED:
        _LOADED.clear()  # one pack at a time is what a process reads
        _LOADED[key] = load_pack(path)
    return _LOADED[key]


def inspect_pack(path: str | Path | None = None) -> tuple[Pack | None, list[PolicyError]]:
    """A pack and every problem found in its files (None when pack.yaml itself cannot be used)."""
    root = Path(path) if path else DEFAULT_PACK
    pack_file = root if root.is_file() else root / "pack.yaml"
    root = pack_file.parent
    label = pack_file.as_posix()
    errors: list[PolicyError] = []
    try:
        data, lines = load_yaml(pack_file)
    except PolicyError as exc:
        return None, [exc]

    def bad(key: str | None, why: str) -> None:
        errors.append(PolicyError(label, key, why, lines.get(key) if key else None))

    if not isinstance(data, dict):
        bad(None, "expected a mapping of keys at the top level")
        return None, errors
    for key in data:
        if key not in TOP_KEYS:
            bad(str(key), f"unknown key; expected one of {', '.join(sorted(TOP_KEYS))}")
    for key in ("pack", "controls", "contract"):
        if key not in data:
            bad(key, "missing")
    params = data.get("parameters") or {}
    if not isinstance(params, dict):
        bad("parameters", "expected a mapping")
        params = {}
    controls = data.get("controls")
    if not isinstance(controls, dict) or not controls:
        bad("controls", "expected a mapping of control IDs")
        controls = {}
    blocks: dict[str, dict[str, Any]] = {}
    for cid, block in controls.items():
        key = f"controls.{cid}"
        if not isinstance(block, dict):
            bad(key, "expected a mapping: {severity: ...} or {off: why}")
            continue
        block = {"off" if k is False else k: v for k, v in block.items()}  # YAML 1.1 reads the key `off` as false
        if "off" in block:
            reason = block["off"]
            if not isinstance(reason, str) or not reason.strip():
                bad(f"{key}.off", "expected the reason the control does not apply")
            elif len(block) > 1:
                bad(f"{key}.off", "a control turned off has no other keys")
        elif "severity" in block and block["severity"] not in SEVERITIES:
            bad(f"{key}.severity", f"expected one of {', '.join(SEVERITIES)}, got {block['severity']!r}")
        blocks[str(cid)] = dict(block)
    files = [pack_file]
    texts: dict[str, str] = {}
    for key in ("notice", "clauses", "contract"):
        name = data.get(key)
        if name is None:
            continue
        if not isinstance(name, str) or not name:
            bad(key, f"expected a file name, got {name!r}")
            continue
        target = root / name
        if not target.exists():  # a special file is refused by name when read (yamlfile.read_text)
            bad(key, f"file {name} not found")
            continue
        files.append(target)
        texts[key] = name
    notice = ""
    if "notice" in texts:
        try:
            notice = read_text(root / texts["notice"], (root / texts["notice"]).as_posix())
        except PolicyError as exc:
            errors.append(exc)
    contract = load_contract(root / texts["contract"], errors) if "contract" in texts else Contract({})
    catalogue = load_controls(root / "controls", set(contract.tables), errors) if contract.tables else {}
    files += sorted((root / "controls").glob("*.sql")) + sorted((root / "templates").glob("*.sql"))
    clauses: list[Clause] = []
    if "clauses" in texts:
        try:
            clauses = _load_clauses(root / texts["clauses"], set(blocks))
        except PolicyError as exc:
            errors.append(exc)
    digest = hashlib.sha256()
    for f in (f for f in files if f.is_file()):
        digest.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    pack = Pack(root, str(data.get("pack", "")), str(data.get("title", data.get("pack", ""))), params, blocks,
                clauses, notice, contract, apply_clauses(catalogue, clauses), str(data.get("version", "") or ""),
                digest.hexdigest(), files)
    for key, value in _walk(params, "parameters"):
        _check_value(label, key, value, lines, errors)
    for cid, block in blocks.items():
        for name, value in block.items():
            if name not in BLOCK_KEYS:
                _check_value(label, f"controls.{cid}.{name}", value, lines, errors)
    if contract.tables and (root / "controls").is_dir():
        _check_controls(pack, label, lines, errors)
    return pack, errors


def _check_controls(pack: Pack, label: str, lines: Lines, errors: list[PolicyError]) -> None:
    """pack.yaml lists every control file once; each evaluated control has exactly the parameters its SQL uses."""
    listed = set(pack.controls)
    for cid, control in pack.catalogue.items():
        if cid not in listed:
            errors.append(PolicyError(control.path.as_posix(), "id", f"{cid} is not listed under `controls` in "
                                      f"pack.yaml (list it, or turn it off: `{cid}: {{off: why}}`)", 2))
    mapped = {c for clause in pack.clauses for c in clause.controls}
    for cid, block in pack.controls.items():
        key = f"controls.{cid}"
        control = pack.catalogue.get(cid)
        if control is None:
            if (pack.path / "controls" / f"{cid}.sql").is_file():
                continue  # its own error is listed
            errors.append(PolicyError(label, key, f"no control file controls/{cid}.sql in the pack",
                                      lines.get(key)))
            continue
        if pack.clauses and cid not in mapped:
            errors.append(PolicyError(label, key, "no clause of clauses.yaml lists this control", lines.get(key)))
        if "off" in block:
            continue
        needed = control.placeholders()
        for name in block:
            if name not in BLOCK_KEYS and name not in needed:
                errors.append(PolicyError(label, f"{key}.{name}", f"unknown key; control {cid} uses "
                                          f"{', '.join(needed) if needed else 'no parameters'}",
                                          lines.get(f"{key}.{name}")))
        for name in needed:
            try:
                pack.value(cid, name)
            except KeyError:
                where = f"{key}.{name}" if "." not in name else f"parameters.{name}"
                errors.append(PolicyError(label, where, f"missing; control {cid} needs it", lines.get(key)))


def _walk(node: Any, prefix: str):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{prefix}.{k}") if isinstance(v, dict) and not _is_mapping_param(k) else [(f"{prefix}.{k}", v)]
    else:
        yield prefix, node


def _is_mapping_param(name: str) -> bool:
    return name.startswith("roles_by_")


def _check_value(label: str, key: str, value: Any, lines: Lines, errors: list[PolicyError]) -> None:
    """Check a value by the naming convention of its key; the controls check presence."""
    name = key.rsplit(".", 1)[-1]

    def bad(why: str) -> None:
        errors.append(PolicyError(label, key, why, lines.get(key)))

    if name.endswith(("_days", "_years")):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            bad(f"expected a whole number >= 0, got {value!r}")
    elif name.endswith(("_from", "_until")):
        if not isinstance(value, dt.date):
            bad(f"expected a date (YYYY-MM-DD), got {value!r}")
    elif name == "currency":
        if not isinstance(value, str) or not CURRENCY.match(value):
            bad(f"expected an ISO 4217 currency code (three capital letters, e.g. EUR), got {value!r}")
    elif key.startswith("parameters.patterns."):
        if not isinstance(value, str):
            bad(f"expected a regular expression, got {value!r}")
        else:
            why = _regex_problem(value)
            if why:
                bad(f"not a valid regular expression for DuckDB (RE2): {why}")
    elif _is_mapping_param(name):
        if not isinstance(value, dict) or not all(
            isinstance(v, list) and v and all(isinstance(i, str) for i in v) for v in value.values()
        ):
            bad("expected a mapping of table name to a non-empty list of roles")
    elif isinstance(value, list):
        if not value:
            bad("an empty list matches nothing: the control would pass without looking (turn it off instead)")
        elif not all(isinstance(i, str) for i in value):
            bad("expected a list of text values")
    elif not isinstance(value, (str, int, float)) or isinstance(value, bool):
        bad(f"unsupported value {value!r}")


def _regex_problem(pattern: str) -> str | None:
    """Why DuckDB's own engine (RE2) refuses a pattern, or None: Python's `re` accepts what RE2 does not."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    con = _re2().cursor()
    try:
        con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
    except duckdb.Error as exc:
        return first_line(exc).split(": ", 1)[-1]
    finally:
        con.close()
    return None


@functools.cache
def _re2() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB for this process's regex checks: a connection costs ~20 ms, a cursor on it
    (one per check, so threads do not share one) next to nothing."""
    return duckdb.connect()


def close_connections() -> None:
    """Close this process's regex-check DuckDB, if open (made again when next needed): a process that will
    fork (the report kernels' server) must hold no DuckDB, whose worker threads a fork would not copy."""
    if _re2.cache_info().currsize:
        _re2().close()
        _re2.cache_clear()


def _load_clauses(path: Path, control_ids: set[str]) -> list[Clause]:
    label = path.as_posix()
    data, lines = load_yaml(path)
    items = data.get("clauses") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise PolicyError(label, "clauses", "expected a list of clauses")
    seen: set[str] = set()
    out = []
    for i, item in enumerate(items):
        key = f"clauses[{i}]"

        def bad(sub: str, why: str) -> PolicyError:
            return PolicyError(label, sub, why, lines.get(sub) or lines.get(key))

        if not isinstance(item, dict):
            raise bad(key, "expected a mapping")
        for k in item:
            if k not in CLAUSE_KEYS:
                raise bad(f"{key}.{k}", "unknown key")
        for k in ("id", "section", "quote"):
            if not item.get(k):
                raise bad(f"{key}.{k}", "missing")
        cid = str(item["id"])
        if cid in seen:
            raise bad(f"{key}.id", f"duplicate clause id {cid}")
        seen.add(cid)
        ctl = item.get("controls") or []
        if not isinstance(ctl, list):
            raise bad(f"{key}.controls", "expected a list of control IDs")
        for c in ctl:
            if c not in control_ids:
                raise bad(f"{key}.controls", f"unknown control {c}")
        manual = item.get("manual")
        if not ctl and not manual:
            raise bad(f"{key}.manual", "a clause with no controls must say why (manual: ...)")
        out.append(Clause(cid, str(item["section"]), " ".join(str(item["quote"]).split()),
                          tuple(ctl), str(manual) if manual else None))
    return out
