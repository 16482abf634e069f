"""expectations/ holds the bundled packs' controls as GX suites, generated from the packs and never stale."""

from __future__ import annotations

import json

from audit.pack import suites
from audit.pack.render import literal
from audit.pack.tools import CHECK_CUTOFF


def test_the_suites_in_expectations_are_what_the_bundled_packs_give():
    stale = suites.stale()
    assert not stale, (f"expectations/ is stale ({', '.join(p.relative_to(suites.SUITES).as_posix() for p in stale)});"
                       f" run `{suites.COMMAND}`")


def test_one_expectation_per_evaluated_control_grouped_by_family_and_gx_reads_them():
    from audit.evaluate.gx_controls import gx  # registers expect_no_control_violations

    for pack in suites.bundled():
        evaluated = [cid for cid in pack.controls if not pack.off(cid)]
        docs = suites.suites(pack)
        got = [e["meta"]["control_id"] for doc in docs.values() for e in doc["expectations"]]
        assert sorted(got) == sorted(evaluated)
        for family, doc in docs.items():
            assert {pack.catalogue[e["meta"]["control_id"]].family for e in doc["expectations"]} == {family}
            suite = gx.ExpectationSuite(name=doc["name"], meta=doc["meta"], expectations=[
                {**e, "kwargs": {**e["kwargs"], "control_sql": e["kwargs"]["control_sql"].replace(
                    "{{ T }}", literal(CHECK_CUTOFF))}} for e in doc["expectations"]])
            assert [e.expectation_type for e in suite.expectations] == [suites.EXPECTATION] * len(doc["expectations"])
            assert [e.meta["control_id"] for e in suite.expectations] == [
                e["meta"]["control_id"] for e in doc["expectations"]]


def test_stale_files_are_named_and_rewritten(tmp_path):
    assert suites.write(tmp_path) == sorted(suites.expected(tmp_path))
    assert suites.stale(tmp_path) == []
    one = next(iter(sorted(tmp_path.glob("default/*.json"))))
    doc = json.loads(one.read_text())
    doc["expectations"][0]["kwargs"]["control_sql"] += " -- edited by hand"
    one.write_text(json.dumps(doc))
    orphan = tmp_path / "gone" / "old.json"
    orphan.parent.mkdir()
    orphan.write_text("{}")
    assert suites.stale(tmp_path) == sorted([one, orphan])
    assert suites.write(tmp_path) == sorted([one, orphan])
    assert suites.stale(tmp_path) == [] and not orphan.parent.exists()
