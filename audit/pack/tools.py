"""Tools for pack authors: `audit pack check DIR` and `audit pack init DIR [--from PACK]` (docs/policy-packs.md).

`check_pack` lists every problem of a pack before any run, each naming file,
line and key: what `inspect_pack` finds in its YAML and metadata, then every
evaluated control's SQL rendered and bound in DuckDB against an EMPTY export
of the pack's contract (the real reader's empty typed views, the engine's
scope views), run with LIMIT 0: a misspelt column or table is an error of that
control's file, found without any data. For each control that binds, its
declared `reads` must be what its SQL reads (audit/pack/reads.py) and its
declared `population` exactly the columns its `population` CTE exposes, the
contract on which report sections rely.

Controls a pack turns off are not bound: their parameters need not be given.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from pathlib import Path

import duckdb
import jinja2

from audit.errors import PolicyError, UsageError, first_line
from audit.pack import portability, reads
from audit.pack.controls import Control, split
from audit.pack.loader import PACKS, Pack, inspect_pack, load_pack
from audit.pack.render import VIOLATION_COLUMNS, population_sql, render, scope_sql
from audit.pack.yamlfile import Lines, parse_yaml
from audit.read import export

# Any cutoff binds the same SQL; this one is fixed so that messages do not change from day to day.
CHECK_CUTOFF = dt.datetime(2026, 9, 30, 23, 59, 59)
# `LINE 12: ...` in DuckDB's messages: a line of the query it was given.
_DUCKDB_LINE = re.compile(r"\bLINE (\d+):")
_PACK_NAME = re.compile(r"^pack:.*$", re.M)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def check_pack(path: str | Path | None) -> tuple[Pack | None, list[PolicyError]]:
    """A pack and every problem found in it, its SQL bound on an empty export included."""
    pack, errors = inspect_pack(path)
    if pack is None or not pack.contract.tables or not pack.catalogue:
        return pack, errors
    reported = {e.file for e in errors}
    evaluated = [c for cid, c in pack.catalogue.items()
                 if cid in pack.controls and not pack.off(cid) and c.path.as_posix() not in reported]
    if evaluated:
        errors += bind_controls(pack, evaluated)
        errors += portability.lint(pack, evaluated, CHECK_CUTOFF)  # what --engine spark could not run as written
    return pack, errors


def bind_controls(pack: Pack, controls: list[Control]) -> list[PolicyError]:
    """Problems of each control's SQL on an empty export of the pack's contract (DuckDB, LIMIT 0)."""
    errors: list[PolicyError] = []
    with tempfile.TemporaryDirectory(prefix="audit-pack-check-") as empty:
        con = export.connect()
        try:
            export.load(Path(empty), con, pack.contract)
            con.execute("CREATE SCHEMA IF NOT EXISTS audit")
            try:
                con.execute(scope_sql(CHECK_CUTOFF, pack.contract))
            except duckdb.Error as exc:  # the engine's shared views read the contract's holds role
                return [PolicyError(pack.path.as_posix() + "/contract.yaml", "holds",
                                    f"the engine's scope views cannot be built: {first_line(exc)}")]
            for control in controls:
                errors += _check_control(con, pack, control)
        finally:
            con.close()
    return errors


def _check_control(con: duckdb.DuckDBPyConnection, pack: Pack, control: Control) -> list[PolicyError]:
    label = control.path.as_posix()
    text = control.path.read_text(encoding="utf-8")
    header, _, body_line = split(text)
    lines = parse_yaml(header, label, first=2)[1]
    # An error in the SQL is on the control's own lines, or in its template's file.
    sql_key, sql_line = ("template", lines.get("template")) if control.template else ("sql", body_line)

    def bad(key: str, why: str, line: int | None) -> PolicyError:
        return PolicyError(label, key, why, line)

    try:
        sql = render(control, pack, CHECK_CUTOFF)
    except KeyError:
        return []  # a missing parameter: inspect_pack has named it in pack.yaml
    except jinja2.TemplateError as exc:
        return [bad(sql_key, f"the SQL template cannot be rendered: {first_line(exc)}", sql_line)]
    try:
        got = [d[0] for d in con.execute(f"SELECT * FROM (\n{sql}\n) LIMIT 0").description]
    except duckdb.Error as exc:
        why = first_line(exc)
        m = _DUCKDB_LINE.search(str(exc))
        if m and not control.template:
            # The wrapper adds one line before the SQL; placeholders fill one line each.
            sql_line = body_line + int(m.group(1)) - 2
        where = f" (template {control.template})" if control.template else ""
        return [bad(sql_key, f"the SQL{where} does not bind against the contract: {why}", sql_line)]
    problems = []
    want = [*VIOLATION_COLUMNS, *control.keys]  # then the control's own `keys`, in their order
    if got != want:
        problems.append(bad(sql_key, f"the SQL returns columns {', '.join(got)}; a control returns "
                                     f"{', '.join(want)}", sql_line))
    problems += _check_population(con, control, sql, label, lines)
    problems += _check_reads(control, sql, pack, label, lines)
    return problems


def _check_population(con, control: Control, sql: str, label: str, lines: Lines) -> list[PolicyError]:
    """The declared `population` names exactly the columns the `population` CTE exposes."""
    try:
        described = con.execute(f"DESCRIBE {population_sql(sql, '*')}").fetchall()
    except (ValueError, duckdb.Error) as exc:
        return [PolicyError(label, "population", f"no `population` CTE to describe: {first_line(exc)}",
                            lines.get("population"))]
    exposed = [r[0] for r in described]
    declared = list(control.population)
    missing = [c for c in exposed if c not in control.population]
    extra = [c for c in declared if c not in exposed]
    if not missing and not extra:
        return []
    parts = ([f"undeclared: {', '.join(missing)}"] if missing else []) + \
            ([f"declared but not exposed: {', '.join(extra)}"] if extra else [])
    return [PolicyError(label, "population", f"the population CTE exposes {', '.join(exposed)}; "
                                             f"{'; '.join(parts)}", lines.get("population"))]


def _check_reads(control: Control, sql: str, pack: Pack, label: str, lines: Lines) -> list[PolicyError]:
    """The declared `reads` is what the SQL reads (`python -m audit.pack.reads --write DIR` rewrites it)."""
    got = reads.analyse(sql, pack.contract)
    if control.reads == got:
        return []
    fix = f"`python -m audit.pack.reads --write {pack.path}` rewrites it"
    if control.reads is None:
        return [PolicyError(label, "reads", f"missing; {fix}", 2)]
    changed = sorted(set(got) | set(control.reads), key=str)
    diff = "; ".join(f"{t}: declared [{', '.join(control.reads.get(t, []))}], read [{', '.join(got.get(t, []))}]"
                     for t in changed if control.reads.get(t) != got.get(t))
    return [PolicyError(label, "reads", f"stale ({diff}); {fix}", lines.get("reads"))]


def source_pack(name: str | Path | None) -> Path:
    """The folder of `--from PACK`: a pack folder, or the name of a bundled pack (default: the default pack)."""
    if name is None:
        return PACKS / "default"
    path = Path(name)
    if (path / "pack.yaml").is_file():
        return path
    if _PLAIN_NAME.match(str(name)) and (PACKS / str(name) / "pack.yaml").is_file():
        return PACKS / str(name)
    bundled = ", ".join(sorted(p.name for p in PACKS.iterdir() if (p / "pack.yaml").is_file()))
    raise UsageError(f"{name}: no pack.yaml there, and not a bundled pack ({bundled})")


def init_pack(dest: Path, source: str | Path | None = None) -> Pack:
    """Copy a pack (default: the bundled default pack) into `dest`, named after `dest`; refuses a non-empty `dest`."""
    origin = source_pack(source)
    load_pack(origin)  # a broken pack is not copied
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest} exists and is not an empty folder")
    name = dest.resolve().name
    shutil.copytree(origin, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    pack_file = dest / "pack.yaml"
    word = name if _PLAIN_NAME.match(name) else "'" + name.replace("'", "''") + "'"
    pack_file.write_text(_PACK_NAME.sub(lambda _: f"pack: {word}", pack_file.read_text(encoding="utf-8"), count=1),
                         encoding="utf-8")
    return load_pack(dest)
