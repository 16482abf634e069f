"""Attestations: the auditor's manual checks of the clauses no control can test from an export.

Some commitments of a notice are facts about documents, registers or
infrastructure (clauses.yaml marks them `manual:`). An attestations file
records, for each such clause, what a person checked by hand, like a waivers
file records accepted risks:

    attestations:
      - clause: retention.review              # a clause of the pack's clauses.yaml with `manual:`
        result: satisfied                     # satisfied | partially satisfied (or partially) | not satisfied
        evidence: Retention review minutes 2026-09-12, ticket DPO-311
        reviewer: J. Roe (DPO)
        date: 2026-09-15                      # when the check was made
        expires: 2027-03-31                   # attests up to and including this day
        note: Periods for logs shortened to 90 days   # optional

A clause may be attested more than once (a renewal): at a run's cutoff the
attestation in date (expiry day on or after the cutoff's day) with the latest
`date` is the current one; the others are `superseded` or `expired`. A manual
clause with no current attestation is `not attested`. The date of the check
may be after the cutoff: an audit of September is usually finished in October.

The run records the file (path and SHA-256) and every attestation, with its
state, in findings.json (`run.attestations`); the ledger keeps them with the
run; the report's traceability table shows each manual clause's current
result; the evidence package holds the file. Reviewers, evidence references
and notes go into the outputs through the same masking as waivers' approvers
(audit.mask.scrub). Errors name the file, the line and the key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from audit.errors import AttestationError, PolicyError
from audit.mask import scrub
from audit.pack.yamlfile import load_yaml

RESULTS = ("satisfied", "partially satisfied", "not satisfied")
ALIASES = {"partially": "partially satisfied", "partly satisfied": "partially satisfied"}
KEYS = ("clause", "result", "evidence", "reviewer", "date", "expires", "note")
REQUIRED = ("clause", "result", "evidence", "reviewer", "date", "expires")
NOT_ATTESTED = "not attested"


@dataclass(frozen=True)
class Attestation:
    clause: str
    result: str
    evidence: str
    reviewer: str
    date: dt.date
    expires: dt.date
    note: str | None = None
    line: int = 0

    def in_date(self, cutoff: dt.datetime) -> bool:
        """Valid at the cutoff: the expiry day is the cutoff's day or later."""
        return self.expires >= cutoff.date()


def load(path: str | Path, manual: set[str] | None = None, clauses: set[str] | None = None) -> list[Attestation]:
    """Read and check an attestations file.

    `manual`: the clauses that may be attested (the pack's clauses with `manual:`);
    `clauses`: every clause id of the pack, to tell an unknown clause from a tested one.
    Raises AttestationError naming the file, the line and the key of the first problem.
    """
    path = Path(path)
    label = str(path)
    try:
        data, lines = load_yaml(path)
    except PolicyError as exc:
        raise AttestationError(label, exc.key, exc.why, exc.line) from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise AttestationError(label, None, "expected a mapping with an 'attestations:' list", 1)
    for key in data:
        if key != "attestations":
            raise AttestationError(label, str(key), "unknown key (expected attestations)", lines.get(str(key)))
    items = data.get("attestations")
    if items is None:
        if "attestations" in data:
            return []
        raise AttestationError(label, "attestations", "missing", 1)
    if not isinstance(items, list):
        raise AttestationError(label, "attestations", "expected a list of attestations", lines.get("attestations"))
    out: list[Attestation] = []
    seen: dict[tuple[str, dt.date], int] = {}
    for i, item in enumerate(items):
        base = f"attestations[{i}]"

        def bad(key: str | None, why: str) -> AttestationError:
            sub = f"{base}.{key}" if key else base
            return AttestationError(label, sub, why, lines.get(sub) or lines.get(base))

        if not isinstance(item, dict):
            raise bad(None, f"expected a mapping ({', '.join(REQUIRED)})")
        for key in item:
            if key not in KEYS:
                raise bad(str(key), f"unknown key (expected {', '.join(KEYS)})")
        for key in REQUIRED:
            if key not in item:
                raise bad(None, f"missing {key}")
            if isinstance(item[key], (list, dict)) or item[key] is None or str(item[key]).strip() == "":
                raise bad(key, "expected a single, non-empty value")
        clause = str(item["clause"]).strip()
        if clauses is not None and clause not in clauses:
            raise bad("clause", f"{clause} is not a clause of the policy pack's clauses.yaml")
        if manual is not None and clause not in manual:
            raise bad("clause", f"{clause} is tested by controls only; only a clause marked manual is attested")
        result = " ".join(str(item["result"]).lower().replace("_", " ").split())
        result = ALIASES.get(result, result)
        if result not in RESULTS:
            raise bad("result", f"expected one of {', '.join(RESULTS)}, got {str(item['result'])!r}")
        date, expires = _date(item["date"], bad, "date"), _date(item["expires"], bad, "expires")
        if expires < date:
            raise bad("expires", f"{expires.isoformat()} is before the date of the check {date.isoformat()}")
        line = lines.get(base) or 0
        if (clause, date) in seen:
            raise bad("date", f"clause {clause} is attested twice on {date.isoformat()} (first at line "
                              f"{seen[(clause, date)]})")
        seen[(clause, date)] = line
        note = item.get("note")
        out.append(Attestation(clause=clause, result=result, evidence=str(item["evidence"]).strip(),
                               reviewer=str(item["reviewer"]).strip(), date=date, expires=expires,
                               note=str(note).strip() if note not in (None, "") else None, line=line))
    return out


def _date(value, bad, key: str) -> dt.date:
    if isinstance(value, dt.datetime):
        raise bad(key, f"{value.isoformat()} is not a date (YYYY-MM-DD)")
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        if len(text) != 10:
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise bad(key, f"{text!r} is not a date (YYYY-MM-DD)") from None


def states(attestations: list[Attestation], cutoff: dt.datetime) -> list[str]:
    """Each attestation's state at the cutoff: current, superseded (a later one in date) or expired."""
    current: dict[str, Attestation] = {}
    for a in attestations:
        if a.in_date(cutoff) and (a.clause not in current or a.date > current[a.clause].date):
            current[a.clause] = a
    return ["expired" if not a.in_date(cutoff) else "current" if current[a.clause] is a else "superseded"
            for a in attestations]


def record(attestations: list[Attestation], cutoff: dt.datetime, path: Path, manual: list[str]) -> dict:
    """What findings.json keeps (`run.attestations`): the file, every attestation masked, the clauses not attested."""
    got = states(attestations, cutoff)
    rows = [{"clause_id": a.clause, "result": a.result, "evidence": scrub(a.evidence), "reviewer": scrub(a.reviewer),
             "date": a.date.isoformat(), "expires": a.expires.isoformat(), "state": s,
             **({"note": scrub(a.note)} if a.note else {})} for a, s in zip(attestations, got)]
    attested = {a.clause for a, s in zip(attestations, got) if s == "current"}
    return {"file": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "attestations": rows,
            "not_attested": [c for c in manual if c not in attested]}


def manual_clauses(pack) -> list[str]:
    """The pack's clauses that need a person's check (`manual:`), in clauses.yaml order."""
    return [cl.id for cl in pack.clauses if cl.manual]


def check_file(path: str | Path, pack) -> list[Attestation]:
    """`load` against a pack: only its manual clauses may be attested."""
    return load(path, set(manual_clauses(pack)), {cl.id for cl in pack.clauses})


def apply(result, path: str | Path, pack) -> None:
    """Record the attestations file in `result.run["attestations"]` (inside a check, before the outputs are written)."""
    path = Path(path)
    result.run["attestations"] = record(check_file(path, pack), result.cutoff, path, manual_clauses(pack))


def current(run: dict) -> dict[str, dict]:
    """The current attestation of each clause, from findings.json's run section ({} when the run had none)."""
    rows = (run.get("attestations") or {}).get("attestations") or []
    return {r["clause_id"]: r for r in rows if r.get("state") == "current"}
