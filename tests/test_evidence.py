"""The evidence package: byte-deterministic, verified offline, naming the member that changed, signed.

Real runs of the CLI over the boundary export, real zips, real Ed25519 keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
import zipfile
from pathlib import Path

import pytest

from audit.outputs import evidence
from tests import boundary_export
from tests.conftest import run_audit


def _check(base: Path, *extra) -> dict:
    export = boundary_export.write(base / "export")
    out, ledger = base / "run", base / "ledger.duckdb"
    proc = run_audit("check", "--exports", export, "--as-of", boundary_export.AS_OF, "--out", out,
                     "--ledger", ledger, *extra)
    assert proc.returncode == 0, proc.stderr
    return {"export": export, "out": out, "ledger": ledger}


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    return _check(tmp_path_factory.mktemp("evidence"))


@pytest.fixture(scope="module")
def package(checked, tmp_path_factory):
    zip_path = tmp_path_factory.mktemp("package") / "evidence.zip"
    proc = run_audit("evidence", checked["out"], "--out", zip_path, "--ledger", checked["ledger"])
    assert proc.returncode == 0, proc.stderr
    return zip_path


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _rewrite(src: Path, dest: Path, changes: dict[str, bytes]) -> Path:
    """The same package with some members' content replaced (valid zip, valid CRCs)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, changes.get(info.filename, zin.read(info)))
    return dest


def test_a_fresh_package_verifies_and_holds_the_run(checked, package):
    proc = run_audit("evidence", "verify", package)
    assert proc.returncode == 0, proc.stderr
    assert "intact" in proc.stdout
    members = _members(package)
    manifest = json.loads(members["MANIFEST.json"])
    listed = {m["path"]: m for m in manifest["members"]}
    assert set(listed) == set(members) - {"MANIFEST.json"}
    for name, m in listed.items():
        assert (hashlib.sha256(members[name]).hexdigest(), len(members[name])) == (m["sha256"], m["size"])
    run_files = {p.relative_to(checked["out"]).as_posix() for p in checked["out"].rglob("*")
                 if p.is_file() and not p.name.startswith(".")}
    kept_pack = {n for n in run_files if n.startswith("pack/")}  # the run folder's copy of its pack
    assert kept_pack and "pack/pack.yaml" in kept_pack
    assert {n.removeprefix("run/") for n in members if n.startswith("run/")} == run_files - kept_pack
    assert {n for n in members if n.startswith("pack/")} == kept_pack  # packed once, as `pack/`
    assert all(members[n] == (checked["out"] / n).read_bytes() for n in kept_pack)
    assert members["run/findings.json"] == (checked["out"] / "findings.json").read_bytes()
    # the export: listed with hashes and row counts, checked against the run's fingerprint, never copied
    exported = json.loads(members["evidence/export.json"])
    assert exported["state"].startswith("verified")
    files = {f["path"]: f["sha256"] for f in exported["files"]}
    assert files == {p.relative_to(checked["export"]).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                     for p in checked["export"].rglob("*") if p.is_file()}
    assert exported["row_counts"] == json.loads(members["run/findings.json"])["run"]["row_counts"]
    assert all(n.split("/")[0] in ("run", "pack", "evidence") for n in listed)
    # the pack, its digest as the run recorded it; versions; the ledger head as `audit ledger verify` prints it
    run = json.loads(members["run/findings.json"])["run"]
    assert json.loads(members["evidence/pack.json"])["sha256"] == run["policy"]["sha256"]
    assert "pack/pack.yaml" in members
    assert json.loads(members["evidence/versions.json"])["packages"]["duckdb"]
    head = run_audit("ledger", "verify", "--ledger", checked["ledger"]).stdout.split("head ")[1].strip()
    ledger = json.loads(members["evidence/ledger.json"])
    assert ledger["head"] == head and ledger["this_run"]["record_hash"] == head


def test_two_packages_of_one_run_are_byte_identical(checked, package, tmp_path):
    again = tmp_path / "again.zip"
    proc = run_audit("evidence", checked["out"], "--out", again, "--ledger", checked["ledger"])
    assert proc.returncode == 0, proc.stderr
    assert again.read_bytes() == package.read_bytes()
    with zipfile.ZipFile(again) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {(i.date_time, i.external_attr >> 16, i.extra) for i in infos} == \
        {((1980, 1, 1, 0, 0, 0), stat.S_IFREG | 0o644, b"")}


def test_a_changed_byte_in_any_member_is_named(package, tmp_path):
    data = package.read_bytes()
    with zipfile.ZipFile(package) as zf:
        infos = zf.infolist()
    for info in infos:
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        at = start + info.compress_size // 2
        damaged = tmp_path / "damaged.zip"
        damaged.write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:])
        with pytest.raises(evidence.EvidenceError, match=f": {info.filename}: "):
            evidence.verify(damaged)
    # a member rewritten with a valid zip around it: its hash names it, through the CLI
    changed = _rewrite(package, tmp_path / "changed.zip",
                       {"run/violations.csv": _members(package)["run/violations.csv"] + b"x\n"})
    proc = run_audit("evidence", "verify", changed)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "run/violations.csv: SHA-256 does not match MANIFEST.json" in proc.stderr


def test_signatures_check_with_the_right_key_only(checked, tmp_path):
    keys, other = tmp_path / "keys", tmp_path / "other"
    for folder in (keys, other):
        assert run_audit("evidence", "keygen", "--out", folder).returncode == 0
    assert stat.S_IMODE((keys / "audit-evidence.key").stat().st_mode) == 0o600
    assert run_audit("evidence", "keygen", "--out", keys).returncode == 2  # never overwritten
    signed = tmp_path / "signed.zip"
    proc = run_audit("evidence", checked["out"], "--out", signed, "--sign", keys / "audit-evidence.key")
    assert proc.returncode == 0, proc.stderr
    ok = run_audit("evidence", "verify", signed, "--public-key", keys / "audit-evidence.pub")
    assert ok.returncode == 0 and "signature checked" in ok.stdout, ok.stderr
    wrong = run_audit("evidence", "verify", signed, "--public-key", other / "audit-evidence.pub")
    assert wrong.returncode == 2 and "MANIFEST.sig: the signature does not match" in wrong.stderr
    sig = json.loads(_members(signed)["MANIFEST.sig"])
    raw = bytearray(base64.b64decode(sig["signature"]))
    raw[0] ^= 1
    sig["signature"] = base64.b64encode(bytes(raw)).decode()
    tampered = _rewrite(signed, tmp_path / "tampered.zip", {"MANIFEST.sig": json.dumps(sig).encode()})
    bad = run_audit("evidence", "verify", tampered, "--public-key", keys / "audit-evidence.pub")
    assert bad.returncode == 2 and "MANIFEST.sig" in bad.stderr and "Traceback" not in bad.stderr
    unsigned = tmp_path / "unsigned.zip"
    assert run_audit("evidence", checked["out"], "--out", unsigned).returncode == 0
    missing = run_audit("evidence", "verify", unsigned, "--public-key", keys / "audit-evidence.pub")
    assert missing.returncode == 2 and "MANIFEST.sig: missing" in missing.stderr


def test_a_changed_export_is_said_and_a_changed_pack_refused(tmp_path):
    from audit.pack.loader import DEFAULT_PACK

    pack = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, pack)
    run = _check(tmp_path, "--policy", pack)
    (run["export"] / "customers.csv").write_text((run["export"] / "customers.csv").read_text() + "\n")
    assert run_audit("evidence", run["out"], "--out", tmp_path / "changed.zip").returncode == 0
    assert json.loads(_members(tmp_path / "changed.zip")["evidence/export.json"])["state"].startswith("changed")
    shutil.rmtree(run["export"])
    assert run_audit("evidence", run["out"], "--out", tmp_path / "gone.zip").returncode == 0
    gone = json.loads(_members(tmp_path / "gone.zip")["evidence/export.json"])
    assert gone["state"].startswith("gone") and gone["files"] == []
    (pack / "notice.txt").write_text((pack / "notice.txt").read_text() + " ")
    # the pack edited at its path: the run folder's copy of it is packed (tests/test_run_pack.py)
    assert run_audit("evidence", run["out"], "--out", tmp_path / "edited.zip").returncode == 0
    copy = run["out"] / "pack" / "notice.txt"
    copy.write_text(copy.read_text() + " ")  # the copy changed: refused, naming it
    proc = run_audit("evidence", run["out"], "--out", tmp_path / "refused.zip")
    assert proc.returncode == 2 and f"{run['out'] / 'pack'}: the policy pack changed since the run" in proc.stderr
    shutil.rmtree(run["out"] / "pack")  # as a run folder of an earlier version: the pack at its path, changed
    proc = run_audit("evidence", run["out"], "--out", tmp_path / "refused.zip")
    assert proc.returncode == 2 and f"{pack}: the policy pack changed since the run" in proc.stderr, proc.stderr
    assert not (tmp_path / "refused.zip").exists()
    inside = run_audit("evidence", run["out"], "--out", run["out"] / "e.zip")
    assert inside.returncode == 2 and "inside the run folder" in inside.stderr
