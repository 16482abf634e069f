"""The peer: Great Expectations over pandas DataFrames, as a typical GX user would run it.

Load the tables a subset of controls needs with pandas, shape them with pandas
(filters at the cutoff, joins, derived flags), then validate GX expectations
with GX's pandas execution engine. Stock expectations are used where one fits
the control (a regex list, a value range); otherwise the user computes a flag
column in pandas and expects it to be True.

The subset (10 of 31 controls, every kind of work: regexes, joins, legal holds,
retention arithmetic over the largest tables): RET-01, RET-03, RET-06, ANO-01,
ANO-03, COB-01, MKT-01, CMP-02, SEC-01, SEC-02. Parquet exports only.

    python benchmarks/peer_gx_pandas.py --exports DIR --as-of 2026-09-30 [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import pandas as pd

CONTROLS = ["RET-01", "RET-03", "RET-06", "ANO-01", "ANO-03", "COB-01", "MKT-01", "CMP-02", "SEC-01", "SEC-02"]
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+[.][A-Za-z]{2,}"
PHONE = r"(\+[0-9]{1,3}[ .-]?)?\(?[0-9]{3}\)?[ .-]?[0-9]{3}[ .-][0-9]{4}"
IPV4 = r"\b([0-9]{1,3}[.]){3}[0-9]{1,3}\b"


def read(root: Path, table: str, columns: list[str]) -> pd.DataFrame:
    path = root / f"{table}.parquet"
    if not path.exists():
        path = root / table  # a hive-partitioned folder
    import pyarrow.dataset as ds

    present = set(ds.dataset(path, format="parquet").schema.names)
    df = pd.read_parquet(path, columns=[c for c in columns if c in present])
    for c in columns:
        if c not in present:  # an optional column the export leaves out
            df[c] = pd.NaT if c.endswith("_at") else pd.NA
    for c in df.columns:
        if c.endswith("_id") or c in ("artifact_type", "content_type", "actor_role", "table_name"):
            df[c] = df[c].astype("string").str.strip().replace("", pd.NA)
        if c in ("artifact_type", "content_type", "actor_role", "table_name"):
            df[c] = df[c].str.lower()
    return df


def live(df: pd.DataFrame, T: pd.Timestamp) -> pd.Series:
    ok = df["deleted_at"].isna() | (df["deleted_at"] > T)
    if "anonymized_at" in df:
        ok &= df["anonymized_at"].isna() | (df["anonymized_at"] > T)
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exports", required=True, type=Path)
    ap.add_argument("--as-of", default="2026-09-30")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx
    import great_expectations.expectations as gxe

    root, T = args.exports, pd.Timestamp(f"{args.as_of} 23:59:59.999999")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas("pandas")
    imported = time.perf_counter()

    holds = read(root, "legal_holds", ["table_name", "record_id", "placed_at", "released_at"])
    holds = holds[(holds.placed_at <= T) & (holds.released_at.isna() | (holds.released_at > T))
                  & holds.record_id.notna()]

    def held(table: str, ids: pd.Series) -> pd.Series:
        return ids.isin(set(holds.loc[holds.table_name == table, "record_id"]))

    def retention(table, key, trigger, days, exists):
        cols = [key, trigger, exists, "deleted_at", "anonymized_at"]
        df = read(root, table, list(dict.fromkeys(cols)))
        df = df[(df[exists] <= T) & live(df, T)]
        due = df[trigger] + pd.Timedelta(days=days)
        return df.assign(ok=~((due < T) & ~held(table, df[key])))

    frames = {}

    def ret01():
        comms = read(root, "communications", ["comm_id", "customer_id", "created_at", "deleted_at", "anonymized_at"])
        cust = read(root, "customers", ["customer_id", "comms_retention_days"]).dropna(subset=["comms_retention_days"])
        days = cust.groupby("customer_id")["comms_retention_days"].min()
        comms = comms[(comms.created_at <= T) & live(comms, T)]
        period = comms.customer_id.map(days).fillna(365).astype("int64")
        due = comms.created_at + pd.to_timedelta(period, unit="D")
        return comms.assign(ok=~((due < T) & ~held("communications", comms.comm_id)))

    def ano01():
        comms = read(root, "communications", ["comm_id", "created_at", "body", "deleted_at", "anonymized_at"])
        return comms[(comms.created_at <= T) & (comms.anonymized_at <= T)
                     & (comms.deleted_at.isna() | (comms.deleted_at > T))]

    def usage():
        df = read(root, "usage_stats", ["stat_id", "stat_date", "dimension"])
        return df[df.stat_date <= T]

    def cob01():
        df = read(root, "cobrowse_artifacts", ["artifact_id", "artifact_type", "content_type", "stored_at"])
        df = df[df.stored_at <= T]
        bad = (df.artifact_type == "screenshot").fillna(False) | df.content_type.str.startswith("image/").fillna(False)
        return df.assign(ok=~bad)

    def mkt01():
        df = read(root, "marketing_emails", ["message_id", "sent_at", "has_unsubscribe_link"])
        df = df[df.sent_at <= T]
        return df.assign(ok=df.has_unsubscribe_link.fillna(False).astype(bool))

    def cmp02():
        df = read(root, "complaints", ["complaint_id", "received_at", "fee_charged"])
        return df[df.received_at <= T].assign(fee_charged=lambda d: d.fee_charged.astype("float64"))

    def sec01():
        df = read(root, "access_log", ["access_id", "accessed_at", "actor_role", "table_name"])
        df = df[df.accessed_at <= T]
        ok = df.actor_role.fillna("").isin(["dpo", "support_engineer", "system"]) | (
            (df.actor_role == "billing") & df.table_name.isin(["invoices", "accounts"])).fillna(False)
        return df.assign(ok=ok.astype(bool))

    def sec02():
        df = read(root, "backups", ["backup_id", "taken_at", "purged_at", "isolated", "encrypted"])
        df = df[(df.taken_at <= T) & (df.purged_at.isna() | (df.purged_at > T))]
        ok = df.isolated.fillna(False).astype(bool) & df.encrypted.fillna(False).astype(bool)
        return df.assign(ok=ok)

    flag = lambda: gxe.ExpectColumnValuesToBeInSet(column="ok", value_set=[True])  # noqa: E731
    plan = {
        "RET-01": (ret01, flag),
        "RET-03": (lambda: retention("technical_logs", "log_id", "logged_at", 90, "logged_at"), flag),
        "RET-06": (lambda: retention("cobrowse_artifacts", "artifact_id", "stored_at", 30, "stored_at"), flag),
        "ANO-01": (ano01, lambda: gxe.ExpectColumnValuesToNotMatchRegexList(
            column="body", regex_list=[EMAIL, PHONE])),
        "ANO-03": (usage, lambda: gxe.ExpectColumnValuesToNotMatchRegexList(
            column="dimension", regex_list=[EMAIL, IPV4])),
        "COB-01": (cob01, flag),
        "MKT-01": (mkt01, flag),
        "CMP-02": (cmp02, lambda: gxe.ExpectColumnValuesToBeBetween(column="fee_charged", max_value=0)),
        "SEC-01": (sec01, flag),
        "SEC-02": (sec02, flag),
    }
    out, secs = {}, {}
    for cid, (prepare, expectation) in plan.items():
        t0 = time.perf_counter()
        df = prepare()
        asset = source.add_dataframe_asset(name=cid)
        batch = asset.add_batch_definition_whole_dataframe(cid).get_batch(batch_parameters={"dataframe": df})
        res = batch.validate(expectation(), result_format="BASIC")
        out[cid] = {"violations": int(res.result.get("unexpected_count", 0)), "population": int(len(df))}
        secs[cid] = round(time.perf_counter() - t0, 4)
        del df, batch
    doc = {"controls": out, "seconds": {"import": round(imported - started, 4), "controls": secs},
           "total_seconds": round(time.perf_counter() - started, 4)}
    text = json.dumps(doc, indent=2)
    if args.json:
        args.json.write_text(text)
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
