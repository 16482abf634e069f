"""Shared columns copied into DuckDB once (audit/evaluate/shared_tables.py): same findings, bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.read import export
from audit.evaluate import shared_tables
from audit.pack.loader import load_pack
from audit.pack.render import cutoff, render, scope_sql
from tests.boundary_export import AS_OF, EXPECTED
from tests.conftest import findings, violations

CATALOGUE = load_pack().catalogue


def _wanted(t):
    pack = load_pack(None)
    readers = [(CATALOGUE[c].tables, render(CATALOGUE[c], pack, t), CATALOGUE[c].reads) for c in pack.controls]
    readers.append((("legal_holds",), scope_sql(t, pack.contract), None))
    return shared_tables.columns_read(readers, load_pack().contract)


@pytest.fixture()
def attached(boundary_parquet_run):
    con = export.connect()
    ex = export.load(boundary_parquet_run["export"], con, load_pack().contract)
    yield con, ex
    con.close()


@pytest.mark.parametrize("control_id", sorted(EXPECTED))
def test_parquet_boundary_export_gives_exactly_the_planted_records(boundary_parquet_run, control_id):
    assert violations(boundary_parquet_run["out"]).get(control_id, set()) == EXPECTED[control_id]


def test_same_counts_as_the_mixed_format_run(boundary_run, boundary_parquet_run):
    def counts(run):
        return {c["control_id"]: (c["status"], c["violations"], c["population"]) for c in findings(run)["controls"]}

    assert counts(boundary_parquet_run["out"]) == counts(boundary_run["out"])


def test_plan_copies_tables_read_by_several_controls_with_the_declared_columns(attached):
    con, ex = attached
    wanted = _wanted(cutoff(AS_OF))
    plan = dict(shared_tables.plan(con, ex, wanted, None))
    assert wanted["communications"][1] >= 2 and "communications" in plan
    # Only what the controls read: the message body (ANO-01) yes, the channel kind no.
    assert "body" in plan["communications"] and "kind" not in plan["communications"]
    assert set(plan["communications"]) == set().union(
        *(c.reads.get("communications", []) for c in CATALOGUE.values()))
    single = [t for t, (_, n) in wanted.items() if n == 1]
    assert single and not set(single) & set(plan)


def test_plan_keeps_within_the_budget_largest_tables_first(attached):
    con, ex = attached
    wanted = _wanted(cutoff(AS_OF))
    sizes = {t: shared_tables.estimate_bytes(con.execute(f'SELECT count(*) FROM main."{t}"').fetchone()[0],
                                          ex.contract.tables[t], set(n))
             for t, n in shared_tables.plan(con, ex, wanted, None)}
    assert shared_tables.plan(con, ex, wanted, 0) == []
    biggest = max(sizes, key=sizes.get)
    budget = sizes[biggest]
    chosen = [t for t, _ in shared_tables.plan(con, ex, wanted, budget)]
    assert chosen[0] == biggest and sum(sizes[t] for t in chosen) <= budget


def test_a_copy_is_the_typed_view_and_a_failed_copy_leaves_the_view(attached):
    con, ex = attached
    before = con.execute("SELECT comm_id, created_at, deleted_at FROM main.communications ORDER BY ALL").fetchall()
    copier = shared_tables.Copier(con, [("communications", ["comm_id", "created_at", "deleted_at"]),
                                        ("complaints", ["no_such_column"])])
    assert copier.wait() == ["communications"]
    assert con.execute("SELECT comm_id, created_at, deleted_at FROM main.communications ORDER BY ALL").fetchall() == before
    assert "raw" in con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'communications'").fetchone()[0]
    con.execute("SELECT complaint_id, fee_charged FROM main.complaints").fetchall()  # still the full view


def test_cancel_stops_before_the_remaining_copies(attached):
    con, ex = attached
    copies = [("communications", ["comm_id", "created_at"])] * 200  # each a few ms
    copier = shared_tables.Copier(con, copies)
    copier.cancel()
    assert len(copier.copied) < len(copies)
    assert con.execute("SELECT count(*) FROM main.communications").fetchone()[0] > 0  # still readable


def test_word_match_when_a_query_declares_nothing():
    got = shared_tables.columns_read([
        (("legal_holds",), "SELECT record_id FROM legal_holds WHERE released_at IS NULL", None),
        (("legal_holds", "nonexistent"), "SELECT 1", {"legal_holds": ["placed_at"], "nonexistent": ["x"]}),
    ], load_pack().contract)
    assert got == {"legal_holds": ({"record_id", "released_at", "placed_at"}, 2)}


@pytest.mark.parametrize("text, size", [("5734MB", 5734 * 10**6), ("5.3 GiB", int(5.3 * 2**30)), ("6GB", 6 * 10**9),
                                        ("512 KiB", 512 * 1024), ("1000", 1000), ("lots", None), (None, None)])
def test_memory_sizes(text, size):
    assert shared_tables.memory_bytes(text) == size


def test_engine_budget_follows_duckdb_memory_limit(boundary_parquet_run, monkeypatch):
    from audit.evaluate import engine

    seen = []
    real = shared_tables.plan
    monkeypatch.setattr(shared_tables, "plan", lambda con, ex, wanted, budget: seen.append(budget) or real(
        con, ex, wanted, budget))
    con = export.connect(memory_limit="600MB")
    try:
        ex = export.load(boundary_parquet_run["export"], con, load_pack().contract)
        con.execute("CREATE SCHEMA IF NOT EXISTS audit")
        t = cutoff(AS_OF)
        con.execute(scope_sql(t, ex.contract))
        pack = load_pack(None)
        planned = [(c, render(CATALOGUE[c], pack, t), {}) for c in pack.controls]
        copier = engine._share_columns(con, ex, CATALOGUE, planned, t)
        assert "communications" in copier.wait()
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]  # '572.2 MiB'
    finally:
        con.close()
    assert seen == [int(shared_tables.memory_bytes(limit) * shared_tables.MEMORY_SHARE)]
    assert 150 * 10**6 < seen[0] < 250 * 10**6


_CONTROLS = st.lists(st.tuples(st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3),
                               st.lists(st.sampled_from(["t1", "t2", "t3"]), unique=True, min_size=1, max_size=3)),
                     max_size=8)


@given(_CONTROLS, st.dictionaries(st.sampled_from(["t1", "t2", "t3"]), st.integers(0, 10**9)),
       st.one_of(st.none(), st.integers(0, 10**12)))
@settings(max_examples=200, deadline=None)
def test_kept_populations_stay_within_the_budget(controls, rows, budget):
    """Kept estimates add up to at most the budget; a control left out did not fit in what was left at its turn;
    a control without report columns keeps nothing; with no budget every control with columns keeps them."""
    wanted = [(f"C-{i}", cols, tables) for i, (cols, tables) in enumerate(controls)]
    kept = shared_tables.kept_populations(wanted, rows, budget)

    def size(cols, tables):
        return max(rows.get(t, 0) for t in tables) * len(cols) * shared_tables.BYTES_KEPT

    left = budget
    for cid, cols, tables in wanted:
        if not cols or (left is not None and size(cols, tables) > left):
            assert cid not in kept
            continue
        assert kept[cid] == cols
        if left is not None:
            left -= size(cols, tables)
    assert budget is None or sum(size(kept[c], t) for c, _, t in wanted if c in kept) <= budget
    if budget is None:
        assert set(kept) == {cid for cid, cols, _ in wanted if cols}
