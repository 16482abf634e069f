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

# Added, optional, to every table declared `personal: true`; its `deleted`/`anonymized` unless it names its own.
LIFECYCLE = ("deleted_at", "anonymized_at")

# Table and column names become SQL identifiers unquoted: plain lower-case words only.
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")
TABLE_KEYS = {"description", "key", "created", "personal", "subject", "deleted", "anonymized", "columns"}
COLUMN_KEYS = {"type", "pii", "optional"}
CONTRACT_KEYS = {"tables", "holds"}
# The legal-holds role: which table and columns say "record R of table X is held from P until Q".
HOLDS_KEYS = ("table", "table_name", "record_id", "placed", "released")
DEFAULT_HOLDS = {"table": "legal_holds", "table_name": "table_name", "record_id": "record_id",
                 "placed": "placed_at", "released": "released_at"}


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
    deleted: str | None = None          # when the record was deleted (a timestamp column)
    anonymized: str | None = None       # when the record was anonymized (a timestamp column)

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return self.columns + self.extra

    @property
    def pii(self) -> dict[str, str]:
        """{column: kind of personal data} of the columns that must never reach an output in clear."""
        return {c.name: c.pii for c in self.all_columns if c.pii}

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.all_columns]

    def columns_of(self, kind: str) -> list[str]:
        """The columns holding personal data of one kind (`email`), in contract order: controls loop over them."""
        return [c.name for c in self.all_columns if c.pii == kind]

    def column(self, name: str) -> Column:
        for c in self.all_columns:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass(frozen=True)
class Holds:
    """The legal-holds role (contract.yaml `holds:`): the audit's `on hold` reads these columns."""

    table: str
    table_name: str
    record_id: str
    placed: str
    released: str


@dataclass(frozen=True)
class Contract:
    tables: dict[str, Table]
    holds: Holds | None = None  # None: no table holds legal holds; nothing is ever on hold

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

    @property
    def anonymizable(self) -> list[Table]:
        """Tables whose records can be anonymized (an `anonymized` column), in contract order (ANO-02)."""
        return [t for t in self.tables.values() if t.anonymized]

    def duckdb_types(self) -> dict[str, dict[str, str]]:
        """{table: {column: DuckDB type}}: the schema sqlglot and the empty export bind against."""
        return {name: {c.name: DUCKDB_TYPE[c.type] for c in t.all_columns} for name, t in self.tables.items()}


def table(name: str, columns: list[Column], created: str | None = None, personal: bool = False,
          key: str | None = None, subject: tuple[str, ...] = (), description: str = "",
          deleted: str | None = None, anonymized: str | None = None) -> Table:
    """A Table; `personal` adds `deleted_at`/`anonymized_at` (optional) where the columns lack them.

    A personal table's `deleted`/`anonymized` default to those two; an export
    with its own lifecycle columns (`deleted_on`) names them instead, and the
    cross-cutting controls read whichever is named.
    """
    present = {c.name for c in columns}
    extra: tuple[Column, ...] = ()
    if personal:
        extra = tuple(Column(n, TS, optional=True) for n in LIFECYCLE if n not in present)
        columns = [Column(c.name, c.type, c.pii, True) if c.name in LIFECYCLE else c for c in columns]
        deleted, anonymized = deleted or LIFECYCLE[0], anonymized or LIFECYCLE[1]
    return Table(name, tuple(columns), created, personal, extra, key, tuple(subject), description, deleted,
                 anonymized)


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
    for k in data:
        if k not in CONTRACT_KEYS:
            bad(str(k), f"unknown key; expected one of {', '.join(sorted(CONTRACT_KEYS))}")
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
        for field_name in ("created", "deleted", "anonymized"):
            value = spec.get(field_name)
            if value is not None and value in names and next(c for c in columns if c.name == value).type != TS:
                bad(f"{key}.{field_name}", f"{value} must be a timestamp column")
        for field_name in ("deleted", "anonymized"):
            value = spec.get(field_name)
            if value is not None and value not in every:
                bad(f"{key}.{field_name}", f"{value!r} is not a column of {name}")
        created = spec.get("created")
        subject = spec.get("subject") or []
        if not isinstance(subject, list) or not all(s in every for s in subject):
            bad(f"{key}.subject", f"expected a list of columns of {name}")
            subject = []
        description = spec.get("description", "")
        out[name] = table(name, columns, created if created in every else None, personal,
                          spec.get("key") if spec.get("key") in every else None, tuple(subject),
                          str(description) if description else "",
                          *(spec.get(f) if spec.get(f) in every else None for f in ("deleted", "anonymized")))
    return Contract(out, _holds(data.get("holds"), out, bad))


def _holds(spec: Any, tables: dict[str, Table], bad) -> Holds | None:
    """The `holds:` role; absent, the table `legal_holds` with the default columns when the contract has it."""
    if spec is None:
        held = tables.get(DEFAULT_HOLDS["table"])
        if held is None:
            return None
        spec = DEFAULT_HOLDS
        missing = [c for c in HOLDS_KEYS[1:] if not _has(held, spec[c])]
        if missing:
            bad(f"tables.{held.name}", f"legal_holds lacks {', '.join(spec[c] for c in missing)}; name its "
                                       f"columns under `holds:` ({', '.join(HOLDS_KEYS)})")
            return None
        return Holds(**spec)
    if not isinstance(spec, dict):
        bad("holds", f"expected a mapping of {', '.join(HOLDS_KEYS)}")
        return None
    for k in spec:
        if k not in HOLDS_KEYS:
            bad(f"holds.{k}", f"unknown key; expected one of {', '.join(HOLDS_KEYS)}")
    values = {k: spec.get(k, DEFAULT_HOLDS[k]) for k in HOLDS_KEYS}
    held = tables.get(values["table"])
    if held is None:
        bad("holds.table", f"{values['table']!r} is not a table of the contract")
        return None
    ok = True
    for k in HOLDS_KEYS[1:]:
        if not _has(held, values[k]):
            bad(f"holds.{k}" if k in spec else "holds", f"{values[k]!r} is not a column of {held.name}")
            ok = False
    for k in ("placed", "released"):
        if ok and held.column(values[k]).type != TS:
            bad(f"holds.{k}" if k in spec else "holds", f"{values[k]} must be a timestamp column")
            ok = False
    return Holds(**values) if ok else None


def _has(t: Table, column: Any) -> bool:
    return isinstance(column, str) and any(c.name == column for c in t.all_columns)


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

