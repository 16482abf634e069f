"""A pack's controls: one file each, `controls/<ID>.sql`, its metadata in a leading comment.

    /* control
    id: RET-02
    title: Survey responses are deleted or anonymized after their retention period
    family: retention
    severity: high
    remediation: Delete or anonymize survey responses older than the retention period.
    requires: [[survey_responses]]
    uses: [legal_holds]
    population: {record_id: the record's key, ...}
    keys: {request_id: the erasure request ...}  # optional: its violations' own columns, after the six
    reads: {survey_responses: [...]}      # written by `python -m audit.pack.reads --write`
    */
    WITH population AS (...) SELECT ...

The metadata is validated by `ControlMeta` (extra keys refused; errors name
file, line and key). Instead of a SQL body, `template: NAME` and `with: {...}`
instantiate `templates/<NAME>.sql`: a generic control written once, like
SQLMesh's generic audits. The clause a control quotes is the first clause of
clauses.yaml that lists it, so report and traceability cannot disagree.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pydantic

from audit.errors import PolicyError
from audit.pack.render import VIOLATION_COLUMNS, placeholders
from audit.pack.yamlfile import Lines, parse_yaml, read_text

HEADER = re.compile(r"\A\s*/\*\s*control[ \t]*\n(.*?)\n\s*\*/[ \t]*\n?", re.S)
CONTROL_ID = re.compile(r"[A-Z][A-Z0-9]*-[0-9]+\Z")
# `with:` values go into SQL as they are: words and spaces only, so a pack cannot inject SQL through them.
PLAIN_WORDS = re.compile(r"[A-Za-z0-9_]+( [A-Za-z0-9_]+)*\Z")
EVERY_TABLE = "*"  # in `requires`: any table of the contract
# A control's `keys` become columns of violations.csv/.xlsx/.parquet beside these, so they may not take their names.
KEY_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
RESERVED_KEYS = frozenset(VIOLATION_COLUMNS) | {"control_id", "severity", "days_overdue", "waiver_id"}
# The report's views a control may feed (its `report:` list), each with the population columns it reads,
# by role: a role is read as the first of its columns the control declares (so DSR-01's `completed_at` and
# CMP-01's `responded_at` both answer `answered_at`). The report reads populations only through these
# projections (audit.report.data), so a view cannot read a column its controls do not declare.
REPORT_VIEWS: dict[str, dict[str, tuple[str, ...]]] = {
    "retention_age": {"record_id": ("record_id",), "trigger_at": ("trigger_at",), "due_at": ("due_at",)},
    "overdue": {"due_at": ("due_at",)},
    "overrides": {c: (c,) for c in ("record_id", "customer_id", "period_days", "period_source", "due_at")},
    "response_time": {"received_at": ("received_at",), "answered_at": ("completed_at", "responded_at"),
                      "due_at": ("due_at",)},
    "request_types": {"received_at": ("received_at",), "answered_at": ("completed_at", "responded_at"),
                      "due_at": ("due_at",), "request_type": ("request_type",)},
    "erasure": {c: (c,) for c in ("table_name", "record_id", "deleted_at", "anonymized_at")},
    "transfer_coverage": {"transfer_id": ("transfer_id",)},
    "transfer_validity": {c: (c,) for c in ("transfer_id", "processor_id", "transferred_at", "destination_country",
                                            "mechanism")},
    "expiring_contracts": {c: (c,) for c in ("processor_id", "contract_id", "contract_expires_at",
                                             "recent_transfers")},
    "consent_at_send": {"message_id": ("message_id",), "sent_at": ("sent_at",)},
    "campaigns": {"message_id": ("message_id",), "campaign": ("campaign",)},
}


def view_columns(view: str, population: dict[str, str] | list[str]) -> dict[str, str | None]:
    """Role -> the population column that plays it in a view (None when the population has none)."""
    return {role: next((c for c in alts if c in population), None) for role, alts in REPORT_VIEWS[view].items()}


def report_columns(control) -> list[str]:
    """The population columns the report views of `control` read, in order, each once ([] when it feeds none)."""
    return list(dict.fromkeys(col for view in control.report for col in view_columns(view, control.population).values()
                              if col))


class Severity(str, enum.Enum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"


SEVERITIES = tuple(s.value for s in Severity)


class ControlMeta(pydantic.BaseModel):
    """The metadata block of a control file."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    id: str
    title: str
    family: str
    tags: list[str] = []
    severity: Severity = pydantic.Field(strict=False)  # from its YAML word
    remediation: str
    requires: list[list[str]]
    uses: list[str] = []
    population: dict[str, str]
    reads: dict[str, list[str]] | None = None
    template: str | None = None
    with_: dict[str, str] = pydantic.Field(default={}, alias="with")
    report: list[str] = []      # views of the report this control feeds (REPORT_VIEWS)
    label: str | None = None    # its violations' name in the report's legends; the title when absent
    keys: dict[str, str] = {}   # identifiers its violation rows carry after the six columns, and their meaning

    @pydantic.field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not CONTROL_ID.match(value):
            raise ValueError("expected an id like RET-01 (capitals, a dash, digits)")
        return value

    @pydantic.field_validator("title", "family", "remediation")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return " ".join(value.split())

    @pydantic.field_validator("requires")
    @classmethod
    def _groups(cls, value: list[list[str]]) -> list[list[str]]:
        if not value or not all(value):
            raise ValueError("expected a non-empty list of non-empty groups of tables")
        return value

    @pydantic.field_validator("keys")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        for k, meaning in value.items():
            if not KEY_NAME.match(k) or k in RESERVED_KEYS:
                raise ValueError(f"{k}: a key is a lower-case column name (letters, digits, _) other than "
                                 f"{', '.join(sorted(RESERVED_KEYS))}")
            if not meaning.strip():
                raise ValueError(f"{k}: say what the key is")
        return value

    @pydantic.field_validator("with_")
    @classmethod
    def _words(cls, value: dict[str, str]) -> dict[str, str]:
        for k, v in value.items():
            if not PLAIN_WORDS.match(k) or " " in k or not PLAIN_WORDS.match(v):
                raise ValueError(f"{k}: {v!r} is not plain words (letters, digits, _ and single spaces)")
        return value


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    section: str
    quote: str
    remediation: str
    requires: tuple[tuple[str, ...], ...]  # every group needs at least one present table
    uses: tuple[str, ...]                  # optional tables: absent = empty, unreadable = error
    sql: str                               # the Jinja2 template (a template file's text when `template:`)
    family: str
    severity: str = "medium"               # the control's default; pack.yaml may override
    tags: tuple[str, ...] = ()
    # Export columns the SQL reads, by table (audit/pack/reads.py); None if not declared.
    reads: dict[str, list[str]] | None = field(default=None, compare=False, hash=False)
    population: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    with_: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    template: str | None = None
    path: Path | None = field(default=None, compare=False, hash=False)
    report: tuple[str, ...] = field(default=(), compare=False, hash=False)
    label: str = field(default="", compare=False, hash=False)
    keys: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def tables(self) -> set[str]:
        return {t for group in self.requires for t in group} | set(self.uses)

    @property
    def clause(self) -> str:
        return f"{self.section} \u2014 \u201c{self.quote}\u201d" if self.section else ""

    def placeholders(self) -> list[str]:
        """The pack parameters the SQL uses (dotted), beside T, the contract and its `with:` values."""
        return placeholders(self.sql, frozenset(self.with_))


def split(text: str) -> tuple[str, str, int] | None:
    """(metadata YAML, SQL body, line of the body) of a control file's text; None without a header."""
    m = HEADER.match(text)
    if not m:
        return None
    return m.group(1), text[m.end():], text[:m.end()].count("\n") + 1


def load_controls(folder: Path, tables: set[str], errors: list[PolicyError]) -> dict[str, Control]:
    """Every `controls/*.sql` of a pack, by id, in file-name order; problems appended to `errors`.

    `tables`: the contract's tables, which `requires`/`uses` may name (`*` in
    `requires`: any of them). A missing folder is an error, not an empty catalogue.
    """
    if not folder.is_dir():
        errors.append(PolicyError(folder.as_posix(), None, "folder not found: a pack keeps its controls there, "
                                                           "one <ID>.sql file each"))
        return {}
    templates = folder.parent / "templates"
    out: dict[str, Control] = {}
    for path in sorted(folder.glob("*.sql")):
        try:
            control = load_control(path, templates, tables)
        except PolicyError as exc:
            errors.append(exc)
            continue
        if control.id in out:
            errors.append(PolicyError(path.as_posix(), "id", f"control {control.id} is also defined in "
                                                             f"{out[control.id].path.name}"))
            continue
        out[control.id] = control
    return out


def load_control(path: Path, templates: Path, tables: set[str]) -> Control:
    """One control file as a Control (its clause filled in later from clauses.yaml)."""
    label = path.as_posix()
    parts = split(read_text(path, label))
    if parts is None:
        raise PolicyError(label, None, "expected a leading `/* control` ... `*/` block of YAML metadata", 1)
    header, body, body_line = parts
    data, lines = parse_yaml(header, label, first=2)
    if not isinstance(data, dict):
        raise PolicyError(label, None, "the `/* control` block must be a mapping of keys", 2)
    try:
        meta = ControlMeta.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _first(exc, label, lines) from None
    if path.stem != meta.id:
        raise PolicyError(label, "id", f"{meta.id} must be in a file named {meta.id}.sql", lines.get("id"))
    for where, group in [(f"requires[{i}]", g) for i, g in enumerate(meta.requires)] + [("uses", meta.uses)]:
        unknown = [t for t in group if t not in tables and not (where != "uses" and t == EVERY_TABLE)]
        if unknown:
            raise PolicyError(label, where, f"{', '.join(unknown)}: not a table of the contract", lines.get(where))
    for view in meta.report:
        if view not in REPORT_VIEWS:
            raise PolicyError(label, "report", f"{view}: not a view of the report; expected one of "
                                               f"{', '.join(REPORT_VIEWS)}", lines.get("report"))
        missing = [" or ".join(REPORT_VIEWS[view][r]) for r, c in view_columns(view, meta.population).items() if not c]
        if missing:
            raise PolicyError(label, "report", f"view {view} reads population column(s) {', '.join(missing)}, "
                                               f"which `population` does not declare", lines.get("report"))
    requires = tuple(tuple(sorted(tables)) if g == [EVERY_TABLE] else tuple(g) for g in meta.requires)
    if meta.template:
        if body.strip():
            raise PolicyError(label, "template", "a control with `template:` has no SQL of its own",
                              lines.get("template"))
        source = templates / f"{meta.template}.sql"
        if not PLAIN_WORDS.match(meta.template) or not source.is_file():
            raise PolicyError(label, "template", f"no template {source.as_posix()}", lines.get("template"))
        sql = read_text(source, source.as_posix())
        unused = set(meta.with_) - set(placeholders(sql))
        if unused:
            raise PolicyError(label, "with", f"{', '.join(sorted(unused))}: not used by template {meta.template}",
                              lines.get("with"))
    else:
        if meta.with_:
            raise PolicyError(label, "with", "`with:` needs `template:`", lines.get("with"))
        if not body.strip():
            raise PolicyError(label, None, "no SQL after the `/* control` block", body_line)
        sql = body
    return Control(
        id=meta.id, title=meta.title, section="", quote="", remediation=meta.remediation, requires=requires,
        uses=tuple(meta.uses), sql=sql, family=meta.family, severity=meta.severity.value, tags=tuple(meta.tags),
        reads=meta.reads, population=dict(meta.population), with_=dict(meta.with_), template=meta.template,
        path=path, report=tuple(meta.report), label=" ".join((meta.label or meta.title).split()),
        keys={k: " ".join(v.split()) for k, v in meta.keys.items()})


def _first(exc: pydantic.ValidationError, label: str, lines: Lines) -> PolicyError:
    """The first error of a validation as a PolicyError naming the key and its line."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    key = ""
    for part in loc:
        key = f"{key}[{part}]" if part.isdigit() else (f"{key}.{part}" if key else part)
    line, probe = None, key
    while probe and line is None:
        line = lines.get(probe)
        parent = re.sub(r"(\.[^.\[]*|\[\d+\])\Z", "", probe)
        probe = parent if parent != probe else ""
    msg = err["msg"]
    if err["type"] == "missing":
        msg = "missing"
        line = line or 1
    elif err["type"] == "extra_forbidden":
        msg = f"unknown key; expected one of {', '.join(sorted(_FIELDS))}"
    elif err["type"] == "enum":
        msg = f"expected one of {', '.join(SEVERITIES)}, got {err.get('input')!r}"
    return PolicyError(label, key or None, msg, line)


_FIELDS = {f.alias or name for name, f in ControlMeta.model_fields.items()}


def apply_clauses(controls: dict[str, Control], clauses: list) -> dict[str, Control]:
    """Each control with the section and quote of the first clause that lists it."""
    out = {}
    for cid, control in controls.items():
        clause = next((cl for cl in clauses if cid in cl.controls), None)
        out[cid] = replace(control, section=clause.section, quote=clause.quote) if clause else control
    return out
