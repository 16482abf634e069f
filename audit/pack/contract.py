"""The data contract model: logical types, kinds of personal data, tables and their columns.

A pack declares its tables in `contract.yaml` (docs/policy-packs.md); this
module validates that file into `Contract`, which the export reader (typed
views), the controls (`contract` in their SQL templates), masking, the sample
generator and the report all read. No table is written here: the default
pack's tables live in audit/packs/default/contract.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.errors import PolicyError
from audit.pack.yamlfile import load_yaml

# Logical types of the contract. The reader maps each to a DuckDB type and a
# parse rule (audit/read/export.py).
ID = "id"            # identifiers: VARCHAR, trimmed, '' = NULL
TEXT = "text"        # free text, kept as is
ENUM = "enum"        # lower-cased and trimmed (status, channel, roles, ...)
CODE = "code"        # upper-cased and trimmed (country codes, regions)
TS = "timestamp"     # TIMESTAMP in UTC
INT = "integer"
DEC = "decimal"
BOOL = "boolean"

DUCKDB_TYPE = {
    ID: "VARCHAR",
    TEXT: "VARCHAR",
    ENUM: "VARCHAR",
    CODE: "VARCHAR",
    TS: "TIMESTAMP",
    INT: "BIGINT",
    DEC: "DECIMAL(18,4)",
    BOOL: "BOOLEAN",
}

# Kinds of personal data a column may hold; the mask module uses them.
EMAIL, PHONE, IP, BODY, NAME, ADDRESS = "email", "phone", "ip", "body", "name", "address"
PII_KINDS = (EMAIL, PHONE, IP, BODY, NAME, ADDRESS)

# Added, optional, to every table declared `personal: true`.
LIFECYCLE = ("deleted_at", "anonymized_at")

# Table and column names become SQL identifiers unquoted: plain lower-case words only.
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")
TABLE_KEYS = {"description", "key", "created", "personal", "subject", "columns"}
COLUMN_KEYS = {"type", "pii", "optional"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    pii: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    created: str | None = None          # the creation-time column ("exists at T")
    personal: bool = False              # holds personal data: deleted_at/anonymized_at are optional
    extra: tuple[Column, ...] = field(default=())
    key: str | None = None              # the column that names one record (DQ-01)
    subject: tuple[str, ...] = ()       # columns that identify a data subject (erasure)
    description: str = ""

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return self.columns + self.extra

    @property
    def pii(self) -> dict[str, str]:
        """{column: kind of personal data} of the columns that must never reach an output in clear."""
        return {c.name: c.pii for c in self.all_columns if c.pii}

    def column(self, name: str) -> Column:
        for c in self.all_columns:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass(frozen=True)
class Contract:
    tables: dict[str, Table]

    @property
    def pii(self) -> dict[str, dict[str, str]]:
        """Columns that must never reach an output in clear, by table."""
        return {name: t.pii for name, t in self.tables.items()}

    @property
    def keyed(self) -> list[Table]:
        """Tables with a key, in contract order (DQ-01 loops over them)."""
        return [t for t in self.tables.values() if t.key]

    @property
    def personal(self) -> list[Table]:
        return [t for t in self.tables.values() if t.personal]

    def duckdb_types(self) -> dict[str, dict[str, str]]:
        """{table: {column: DuckDB type}}: the schema sqlglot and the empty export bind against."""
        return {name: {c.name: DUCKDB_TYPE[c.type] for c in t.all_columns} for name, t in self.tables.items()}


def table(name: str, columns: list[Column], created: str | None = None, personal: bool = False,
          key: str | None = None, subject: tuple[str, ...] = (), description: str = "") -> Table:
    """A Table; `personal` adds `deleted_at`/`anonymized_at` (optional) where the columns lack them."""
    present = {c.name for c in columns}
    extra: tuple[Column, ...] = ()
    if personal:
        extra = tuple(Column(n, TS, optional=True) for n in LIFECYCLE if n not in present)
        columns = [Column(c.name, c.type, c.pii, True) if c.name in LIFECYCLE else c for c in columns]
    return Table(name, tuple(columns), created, personal, extra, key, tuple(subject), description)


def load_contract(path: Path, errors: list[PolicyError]) -> Contract:
    """contract.yaml as a Contract; every problem is appended to `errors` (file, line, key)."""
    label = path.as_posix()
    try:
        data, lines = load_yaml(path)
    except PolicyError as exc:
        errors.append(exc)
        return Contract({})

    def bad(key: str | None, why: str) -> None:
        errors.append(PolicyError(label, key, why, lines.get(key)))

    tables = data.get("tables") if isinstance(data, dict) else None
    if not isinstance(tables, dict) or not tables:
        bad("tables", "expected a mapping of table names")
        return Contract({})
    out: dict[str, Table] = {}
    for name, spec in tables.items():
        key = f"tables.{name}"
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            bad(key, "a table name is a lower-case word (letters, digits, _)")
            continue
        if not isinstance(spec, dict):
            bad(key, "expected a mapping with `columns`")
            continue
        for k in spec:
            if k not in TABLE_KEYS:
                bad(f"{key}.{k}", f"unknown key; expected one of {', '.join(sorted(TABLE_KEYS))}")
        columns = _columns(spec.get("columns"), key, bad)
        names = {c.name for c in columns}
        personal = spec.get("personal", False)
        if not isinstance(personal, bool):
            bad(f"{key}.personal", f"expected true or false, got {personal!r}")
            personal = False
        every = names | (set(LIFECYCLE) if personal else set())
        for field_name in ("key", "created"):
            value = spec.get(field_name)
            if value is not None and value not in every:
                bad(f"{key}.{field_name}", f"{value!r} is not a column of {name}")
        created = spec.get("created")
        if created in names and next(c for c in columns if c.name == created).type != TS:
            bad(f"{key}.created", f"{created} must be a timestamp column")
        subject = spec.get("subject") or []
        if not isinstance(subject, list) or not all(s in every for s in subject):
            bad(f"{key}.subject", f"expected a list of columns of {name}")
            subject = []
        description = spec.get("description", "")
        out[name] = table(name, columns, created if created in every else None, personal,
                          spec.get("key") if spec.get("key") in every else None, tuple(subject),
                          str(description) if description else "")
    return Contract(out)


def _columns(spec: Any, key: str, bad) -> list[Column]:
    if not isinstance(spec, dict) or not spec:
        bad(f"{key}.columns", "expected a mapping of column names to {type: ...}")
        return []
    out = []
    for name, col in spec.items():
        ckey = f"{key}.columns.{name}"
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            bad(ckey, "a column name is a lower-case word (letters, digits, _)")
            continue
        if not isinstance(col, dict):
            bad(ckey, "expected a mapping with `type`")
            continue
        for k in col:
            if k not in COLUMN_KEYS:
                bad(f"{ckey}.{k}", f"unknown key; expected one of {', '.join(sorted(COLUMN_KEYS))}")
        ltype, pii, optional = col.get("type"), col.get("pii"), col.get("optional", False)
        if ltype not in DUCKDB_TYPE:
            bad(f"{ckey}.type", f"expected one of {', '.join(DUCKDB_TYPE)}, got {ltype!r}")
            continue
        if pii is not None and pii not in PII_KINDS:
            bad(f"{ckey}.pii", f"expected one of {', '.join(PII_KINDS)}, got {pii!r}")
            pii = None
        if not isinstance(optional, bool):
            bad(f"{ckey}.optional", f"expected true or false, got {optional!r}")
            optional = False
        out.append(Column(name, ltype, pii, optional))
    return out

