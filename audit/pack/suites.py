"""The bundled packs' controls as Great Expectations suites: `expectations/<pack>/<family>.json`, generated.

Nothing reads these files at run time: the engine renders each control from
its pack (audit/evaluate/gx_controls.py builds the same expectations in
memory). They are for GX users who want the controls in their own context:
one suite per family of a pack, one `expect_no_control_violations`
expectation per evaluated control, its SQL in `kwargs.control_sql` rendered
with the pack's values (templates instantiated, parameters filled, the
contract's loops unrolled) and `{{ T }}` left for the cutoff, its metadata in
`meta`. Controls the pack turns off are left out.

    python -m audit.pack.suites           # exit 1 naming the stale files
    python -m audit.pack.suites --write   # regenerate them

tests/test_pack_suites.py fails when a file differs from what its pack gives.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from audit.evaluate.gx_controls import violations_table
from audit.pack.loader import PACKS, Pack, load_pack
from audit.pack.render import render

SUITES = Path(__file__).resolve().parent.parent.parent / "expectations"  # of the checkout; a wheel has none
COMMAND = "python -m audit.pack.suites --write"
EXPECTATION = "expect_no_control_violations"


def bundled() -> list[Pack]:
    """Every pack bundled with the package (audit/packs/*/pack.yaml), by name."""
    return [load_pack(p.parent) for p in sorted(PACKS.glob("*/pack.yaml"))]


def suites(pack: Pack) -> dict[str, dict]:
    """{family: GX ExpectationSuite JSON} of a pack, families and controls in the pack's report order."""
    out: dict[str, dict] = {}
    for cid in pack.controls:
        if pack.off(cid):
            continue
        control = pack.catalogue[cid]
        suite = out.setdefault(control.family, {
            "name": f"{pack.name}.{control.family}",
            "meta": {"pack": pack.name, "title": pack.title, "version": pack.version,
                     "note": f"Generated from the pack's control files by `{COMMAND}`; do not edit. "
                             "Each expectation is one control; {{ T }} in its SQL is the cutoff, a SQL "
                             "timestamp literal."},
            "expectations": []})
        suite["expectations"].append({
            "type": EXPECTATION,
            "kwargs": {"control_sql": render(control, pack, "{{ T }}"), "violations_table": violations_table(cid)},
            "meta": {"control_id": cid, "title": control.title,
                     "clause": {"section": control.section, "quote": control.quote},
                     "severity": pack.severity(cid), "remediation": control.remediation,
                     "family": control.family, "tags": list(control.tags),
                     "requires": [list(g) for g in control.requires], "uses": list(control.uses),
                     "reads": control.reads, "population": control.population},
        })
    return out


def expected(root: Path = SUITES) -> dict[Path, str]:
    """{file: its text} of every suite the bundled packs give."""
    return {root / pack.name / f"{family}.json": json.dumps(suite, indent=2, ensure_ascii=False) + "\n"
            for pack in bundled() for family, suite in suites(pack).items()}


def stale(root: Path = SUITES, want: dict[Path, str] | None = None) -> list[Path]:
    """Files to rewrite or delete so that `root` holds exactly the generated suites (`want`, else `expected`)."""
    want = expected(root) if want is None else want
    have = set(root.glob("**/*.json")) if root.is_dir() else set()
    return sorted(p for p in want.keys() | have
                  if p not in want or not p.is_file() or p.read_text(encoding="utf-8") != want[p])


def write(root: Path = SUITES) -> list[Path]:
    """Regenerate the suites under `root`: stale files rewritten, files of no suite removed; the files changed."""
    want = expected(root)
    changed = stale(root, want)
    for path in changed:
        if path in want:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(want[path], encoding="utf-8")
        else:
            path.unlink()
    for folder in sorted((p for p in root.glob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    return changed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--write" in argv:
        changed = write()
        print(f"{len(changed)} suite files written or removed under {SUITES}")
        return 0
    bad = stale()
    for path in bad:
        print(f"{path}: stale; run `{COMMAND}`")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
