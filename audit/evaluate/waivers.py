"""Waivers: accepted risks with a justification, an approver and an expiry date.

A waivers file (`waivers.yaml`) lists waivers under `waivers:`:

    expired_severity: medium        # optional: severity of WVR-01 (default medium)
    waivers:
      - id: W-1
        control: RET-03
        records: [L-1001, L-1002]    # optional: exact record ids, or
        # pattern: "L-10*"           # a glob over record ids (*, ?, [abc]); not both
        # table: technical_logs      # optional: only violations of this table
        justification: Logs under investigation, kept on counsel's advice
        approver: J. Roe (DPO)
        expires: 2026-12-31          # waives up to and including this day

A waiver with neither `records` nor `pattern` waives every violation of its
control. Record ids and patterns match the ids as exported, or as
violations.csv shows them (an id holding personal data is masked there, with a
keyed hash: `ACC-***00~3f2a9c1b0d4e`, audit/mask.py). Waived violations stay
in every output: findings.json keeps `violations` as the unwaived count and adds `waived`; violations.csv keeps one
row per violation with `[waived: ...]` at the end of `detail`;
violations.parquet gains a `waiver_id` column. Approvers go into the outputs
through the same masking as details (an e-mail address or phone number in an
approver's name is masked). A control whose violations are
all waived passes. When several waivers match a violation, the first in the
file is named.

A waiver whose expiry day is before the run's cutoff waives nothing and is a
violation of `WVR-01` ("Waivers are in date"), a control entry added to every
run that applies a waivers file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from audit.pack.controls import SEVERITIES, Control
from audit.evaluate.engine import ControlResult
from audit.errors import WaiverError, first_line
from audit.mask import mask_id, scrub
from audit.pack.yamlfile import RefusedYAML, StrictLoader

WVR_ID = "WVR-01"
KEYS = ("id", "control", "records", "pattern", "table", "justification", "approver", "expires")
REQUIRED = ("id", "control", "justification", "approver", "expires")
TOP_KEYS = ("waivers", "expired_severity")
DEFAULT_EXPIRED_SEVERITY = "medium"

WVR_CONTROL = Control(
    id=WVR_ID, title="Waivers are in date", section="Waivers",
    quote="A waived violation is an accepted risk only until the waiver's expiry date.",
    remediation="Renew the waiver with a new approval and expiry date, or remediate the violations it covered.",
    requires=(), uses=(), sql="", family="waivers",
)


@dataclass(frozen=True)
class Waiver:
    id: str
    control: str
    justification: str
    approver: str
    expires: dt.date
    records: tuple[str, ...] | None = None
    pattern: str | None = None
    table: str | None = None
    line: int = 0

    def active(self, cutoff: dt.datetime) -> bool:
        """In date at the cutoff: the expiry day is the cutoff's day or later."""
        return self.expires >= cutoff.date()

    @property
    def scope(self) -> str:
        if self.records is not None:
            what = f"records {', '.join(self.records)}"
        elif self.pattern is not None:
            what = f"records matching {self.pattern}"
        else:
            what = "all violations"
        return what + (f" of table {self.table}" if self.table else "")


@dataclass(frozen=True)
class WaiverFile:
    path: Path
    waivers: tuple[Waiver, ...]
    expired_severity: str = DEFAULT_EXPIRED_SEVERITY


def load(path: str | Path, control_ids: set[str] | None = None) -> WaiverFile:
    """Read and validate a waivers file; `control_ids`: the controls a waiver may name.

    Raises WaiverError naming the file and the line of the first problem.
    """
    path = Path(path)
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WaiverError(label, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WaiverError(label, None, f"cannot be read ({exc})") from None
    try:
        root = yaml.compose(text, Loader=StrictLoader)
    except RefusedYAML as exc:
        raise WaiverError(label, exc.problem_mark.line + 1, exc.problem) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        why = exc.problem or exc.context or "syntax error"
        raise WaiverError(label, mark.line + 1 if mark else None, f"not valid YAML: {why}") from None
    except yaml.YAMLError as exc:
        raise WaiverError(label, None, f"not valid YAML: {first_line(exc)}") from None
    except RecursionError:
        raise WaiverError(label, None, "not valid YAML: nested too deeply") from None

    def err(node, why: str) -> WaiverError:
        return WaiverError(label, node.start_mark.line + 1 if node is not None else None, why)

    if root is None:
        return WaiverFile(path, ())
    if not isinstance(root, yaml.MappingNode):
        raise err(root, "expected a mapping with a 'waivers:' list")
    top = _pairs(root, err, "the file")
    for key, (knode, _) in top.items():
        if key not in TOP_KEYS:
            raise err(knode, f"unknown key {key!r} (expected {', '.join(TOP_KEYS)})")
    severity = DEFAULT_EXPIRED_SEVERITY
    if "expired_severity" in top:
        vnode = top["expired_severity"][1]
        severity = _scalar(vnode, err, "expired_severity").lower()
        if severity not in SEVERITIES:
            raise err(vnode, f"expired_severity: expected one of {', '.join(SEVERITIES)}, got {severity!r}")
    if "waivers" not in top:
        raise err(root, "missing key 'waivers'")
    seq = top["waivers"][1]
    if isinstance(seq, yaml.ScalarNode) and seq.tag.endswith(":null"):
        return WaiverFile(path, (), severity)
    if not isinstance(seq, yaml.SequenceNode):
        raise err(seq, "'waivers' must be a list of waivers")
    out: list[Waiver] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(seq.value, start=1):
        out.append(_waiver(item, i, err, control_ids, seen))
    return WaiverFile(path, tuple(out), severity)


def _pairs(node: yaml.MappingNode, err, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    pairs: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for knode, vnode in node.value:
        if not isinstance(knode, yaml.ScalarNode):
            raise err(knode, f"{what}: keys must be plain words")
        key = knode.value
        if key in pairs:
            raise err(knode, f"{what}: key {key!r} given twice")
        pairs[key] = (knode, vnode)
    return pairs


def _scalar(node: yaml.Node, err, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise err(node, f"{what} must be a single value")
    return node.value.strip()


def _waiver(item, index: int, err, control_ids, seen: dict[str, int]) -> Waiver:
    if not isinstance(item, yaml.MappingNode):
        raise err(item, f"waiver #{index}: expected a mapping (id, control, justification, approver, expires)")
    line = item.start_mark.line + 1
    name = f"waiver #{index}"
    raw = _pairs(item, err, name)
    if "id" in raw:
        wid = _scalar(raw["id"][1], err, f"{name}: id")
        if wid:
            name = f"waiver {wid}"
    for key, (knode, _) in raw.items():
        if key not in KEYS:
            raise err(knode, f"{name}: unknown key {key!r} (expected {', '.join(KEYS)})")
    values: dict[str, str] = {}
    for key in ("id", "control", "pattern", "table", "justification", "approver", "expires"):
        if key in raw:
            values[key] = _scalar(raw[key][1], err, f"{name}: {key}")
    for key in REQUIRED:
        if not values.get(key):
            where = raw[key][1] if key in raw else item
            raise err(where, f"{name}: {key} is empty" if key in raw else f"{name}: missing {key}")
    wid = values["id"]
    if wid in seen:
        raise err(raw["id"][1], f"{name}: id used twice (first at line {seen[wid]})")
    seen[wid] = line
    control = values["control"]
    if control_ids is not None and control not in control_ids:
        raise err(raw["control"][1], f"{name}: control {control} is not in the policy pack")
    try:
        expires = dt.date.fromisoformat(values["expires"])
        if len(values["expires"]) != 10:
            raise ValueError
    except ValueError:
        raise err(raw["expires"][1], f"{name}: expires {values['expires']!r} is not a date (YYYY-MM-DD)") from None
    records = None
    if "records" in raw:
        if "pattern" in raw:
            raise err(raw["pattern"][0], f"{name}: give records or pattern, not both")
        rnode = raw["records"][1]
        if isinstance(rnode, yaml.ScalarNode) and rnode.value.strip():
            rnode_items = [rnode]
        elif isinstance(rnode, yaml.SequenceNode) and rnode.value:
            rnode_items = rnode.value
        else:
            raise err(rnode, f"{name}: records must be a non-empty list of record ids")
        records = tuple(_scalar(r, err, f"{name}: each record id") for r in rnode_items)
        if any(not r for r in records):
            raise err(rnode, f"{name}: records must not hold an empty id")
    if "pattern" in raw and not values.get("pattern"):
        raise err(raw["pattern"][1], f"{name}: pattern is empty")
    if "table" in raw and not values.get("table"):
        raise err(raw["table"][1], f"{name}: table is empty")
    return Waiver(id=wid, control=control, justification=values["justification"], approver=values["approver"],
                  expires=expires, records=records, pattern=values.get("pattern"),
                  table=values["table"].lower() if values.get("table") else None, line=line)


@dataclass
class WaivedControlResult(ControlResult):
    """A control result with its count of waived violations (`violations` is then the unwaived count)."""

    waived: int = 0

    def as_dict(self) -> dict:
        d = super().as_dict()
        d["waived"] = self.waived
        return d


def _with_waived(r: ControlResult, waived: int) -> WaivedControlResult:
    base = {f.name: getattr(r, f.name) for f in fields(ControlResult)}
    return WaivedControlResult(**base, waived=waived)


def apply(result, path: str | Path) -> None:
    """Mark the violations of `result` that a waiver in date covers, and add WVR-01.

    Runs inside a check, after `audit.all_violations` exists on `result.con`
    and before the outputs are written. Adjusts each control's `violations` to
    the unwaived count (so `--fail-on` counts only those), adds `waived`, and
    records the waivers in `result.run["waivers"]`.
    """
    con = result.con
    wf = load(path, {r.control.id for r in result.controls})
    cutoff = result.cutoff
    con.execute("ALTER TABLE audit.all_violations ADD COLUMN IF NOT EXISTS waiver_id VARCHAR")
    matched: dict[str, int] = {}
    for w in wf.waivers:
        if not w.active(cutoff):
            matched[w.id] = 0
            continue
        cond = ["waiver_id IS NULL", "control_id = ?"]
        params: list = [w.control]
        if w.table:
            cond.append("table_name = ?")
            params.append(w.table)
        # A waiver names ids as exported, or as violations.csv shows them (masked, with their hash).
        if w.records is not None:
            cond.append("(list_contains(?, record_id) OR list_contains(?, audit_mask_id(record_id)))")
            params += [list(w.records)] * 2
        elif w.pattern is not None:
            cond.append("(record_id GLOB ? OR audit_mask_id(record_id) GLOB ?)")
            params += [w.pattern] * 2
        note = f" [waived: {w.id}, approved by {scrub(w.approver)}, until {w.expires.isoformat()}]"
        n = con.execute(
            f"UPDATE audit.all_violations SET waiver_id = ?, detail = coalesce(detail, '') || ? "
            f"WHERE {' AND '.join(cond)}", [w.id, note, *params]).fetchone()[0]
        matched[w.id] = int(n)
    counts = dict(con.execute(
        "SELECT control_id, count(*) FROM audit.all_violations WHERE waiver_id IS NOT NULL GROUP BY 1").fetchall())
    by_control: dict[str, list[str]] = {}
    for w in wf.waivers:
        if matched.get(w.id):
            by_control.setdefault(w.control, []).append(w.id)
    new_controls = []
    for r in result.controls:
        waived = int(counts.get(r.control.id, 0))
        r2 = _with_waived(r, waived)
        if waived:
            r2.violations = max(r.violations - waived, 0)
            ids = ", ".join(mask_id(i) for i in by_control.get(r.control.id, []))
            if r2.violations == 0 and r2.status == "fail":
                r2.status = "pass"
                note = f"all {waived} violations waived ({ids})"
            else:
                note = f"{waived} of {r.violations} violations waived ({ids})"
            r2.message = f"{r2.message}; {note}" if r2.message else note
        new_controls.append(r2)

    expired = [w for w in wf.waivers if not w.active(cutoff)]
    for w in expired:
        detail = (f"waiver {w.id} for {w.control} ({w.scope}), approved by {scrub(w.approver)}, expired "
                  f"{w.expires.isoformat()}; the violations it covered count again")
        con.execute(
            "INSERT INTO audit.all_violations (control_id, severity, table_name, record_id, customer_id, event_at, "
            "due_at, detail, waiver_id) VALUES (?, ?, 'waivers', ?, NULL, NULL, ?, ?, NULL)",
            [WVR_ID, wf.expired_severity, w.id, dt.datetime.combine(w.expires, dt.time()), detail])
    wvr = _with_waived(ControlResult(WVR_CONTROL, wf.expired_severity, "fail" if expired else "pass",
                                     violations=len(expired), population=len(wf.waivers),
                                     message=(f"expired: {', '.join(mask_id(w.id) for w in expired)}" if expired else
                                              f"{len(wf.waivers)} waivers in date")), 0)
    new_controls.append(wvr)
    result.controls[:] = new_controls
    con.execute("CREATE OR REPLACE TABLE audit.__sorted AS SELECT * FROM audit.all_violations "
                "ORDER BY control_id, table_name, record_id")
    con.execute("DROP TABLE audit.all_violations")
    con.execute("ALTER TABLE audit.__sorted RENAME TO all_violations")
    result.run["waivers"] = {
        "file": str(Path(path)),
        "sha256": _sha256(Path(path)),
        "expired_severity": wf.expired_severity,
        "waived": sum(counts.values()),
        "expired": len(expired),
        "waivers": [
            {"id": mask_id(w.id), "control_id": w.control, "approver": scrub(w.approver), "expires": w.expires.isoformat(),
             "state": "active" if w.active(cutoff) else "expired", "waived": matched.get(w.id, 0)}
            for w in wf.waivers
        ],
    }


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
