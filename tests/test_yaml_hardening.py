"""Hostile and careless policy packs and waivers files: bounded work, one line naming file, line and key.

Each case fails on a PyYAML `safe_load`: aliases expand exponentially, the
last of two equal keys wins silently, `.inf`/`.nan` and impossible dates are
built into values (or raise far from their line), a Latin-1 file is an
internal error, a FIFO blocks forever.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from audit.errors import PolicyError, WaiverError
from audit.pack.loader import DEFAULT_PACK, load_pack
from audit.evaluate.waivers import load as load_waivers
from tests.conftest import AUDIT

# Nine levels of nine aliases: 9^9 (387 million) strings in 1 KB.
LAUGHS = "pack: laughs\ncontrols:\n  RET-03: {severity: high, period_days: 90}\nparameters:\n" + \
    '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
        f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
ALIAS_LINE = 5  # the first anchor


@pytest.fixture()
def pack(tmp_path) -> Path:
    dest = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, dest)
    return dest


def edit(path: Path, old: str, new: str) -> int:
    """Replace the first `old` in the file; the 1-based line where it was."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def check(pack: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`audit check` with the pack, bounded: a pack that hangs the loader fails the test, not the suite."""
    exports = tmp_path / "export"
    exports.mkdir(exist_ok=True)
    return subprocess.run([*AUDIT, "check", "--exports", exports, "--policy", pack, "--out", tmp_path / "run",
                           "--ledger", "-"], capture_output=True, text=True, timeout=60)


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


# -- aliases and anchors ----------------------------------------------------------------------------

def test_billion_laughs_pack_is_refused_at_once_naming_file_and_line(pack, tmp_path):
    (pack / "pack.yaml").write_text(LAUGHS)
    assert len(LAUGHS) < 4096
    started = time.monotonic()
    line = one_line(check(pack, tmp_path))
    assert time.monotonic() - started < 30
    assert line == (f"audit: error: {(pack / 'pack.yaml').as_posix()}, line {ALIAS_LINE}: YAML anchors and aliases "
                    f"(&name, *name) are not allowed; write the values out")


def test_an_alias_in_clauses_is_refused(pack):
    n = edit(pack / "clauses.yaml", "    section:", "    section: &s")
    with pytest.raises(PolicyError) as err:
        load_pack(pack)
    assert (err.value.file, err.value.line) == ((pack / "clauses.yaml").as_posix(), n)
    assert "anchors and aliases" in err.value.why


def test_an_alias_in_waivers_is_refused(tmp_path):
    path = tmp_path / "waivers.yaml"
    path.write_text("waivers:\n  - &w {id: W-1, control: RET-03, justification: j, approver: a, expires: 2026-12-31}\n"
                    "  - *w\n")
    with pytest.raises(WaiverError) as err:
        load_waivers(path)
    assert str(err.value) == (f"{path}, line 2: YAML anchors and aliases (&name, *name) are not allowed; "
                              "write the values out")


@pytest.mark.parametrize("nested", ["[" * 5000 + "]" * 5000, "{a: " * 3000 + "1" + "}" * 3000])
def test_deep_nesting_is_one_line(pack, tmp_path, nested):
    (pack / "pack.yaml").write_text(f"pack: deep\nparameters: {nested}\n")
    assert one_line(check(pack, tmp_path)).endswith("pack.yaml: not valid YAML: nested too deeply")
    waivers = tmp_path / "w.yaml"
    waivers.write_text(f"waivers: {nested}\n")
    with pytest.raises(WaiverError, match="nested too deeply"):
        load_waivers(waivers)


# -- duplicate keys -----------------------------------------------------------------------------------

@pytest.mark.parametrize("file, old, new, key, first", [
    ("pack.yaml", "  RET-03: {severity: high, period_days: 90}",
     "  RET-03: {severity: high, period_days: 90}\n  RET-03: {severity: low, period_days: 9000}", "controls.RET-03", 0),
    ("pack.yaml", "RET-03: {severity: high, period_days: 90}", "RET-03: {severity: high, period_days: 90, "
     "period_days: 9000}", "controls.RET-03.period_days", 0),
    ("pack.yaml", "controls:\n", "controls:\n  DQ-02: {severity: low}\n", "controls.DQ-02", -1),
    ("clauses.yaml", "    section:", "    section: Twice\n    section:", "clauses[0].section", 0),
])
def test_a_key_given_twice_names_file_line_and_key(pack, file, old, new, key, first):
    line = edit(pack / file, old, new)
    second = line + new.count("\n") if first == 0 else None
    with pytest.raises(PolicyError) as err:
        load_pack(pack)
    assert (err.value.file, err.value.key) == ((pack / file).as_posix(), key)
    assert err.value.why.startswith("given twice (first at line ")
    if second is not None:
        assert err.value.line == second and err.value.why == f"given twice (first at line {line})"
    assert str(err.value).startswith(f"{(pack / file).as_posix()}, line {err.value.line}: key {key}: given twice")


# -- special floats and impossible dates ------------------------------------------------------------

@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", ".NaN", "+.INF", "1.0e+999"])
def test_special_floats_name_the_key(pack, value):
    line = edit(pack / "pack.yaml", "RET-03: {severity: high, period_days: 90}",
                f"RET-03: {{severity: high, period_days: {value}}}")
    with pytest.raises(PolicyError) as err:
        load_pack(pack)
    assert (err.value.key, err.value.line) == ("controls.RET-03.period_days", line)
    assert str(err.value) == (f"{(pack / 'pack.yaml').as_posix()}, line {line}: key controls.RET-03.period_days: "
                              f"expected a finite number, got {value}")


def test_special_floats_anywhere_in_clauses(pack):
    line = edit(pack / "clauses.yaml", "    section:", "    weight: .nan\n    section:")
    with pytest.raises(PolicyError) as err:
        load_pack(pack)
    assert (err.value.key, err.value.line) == ("clauses[0].weight", line)


@pytest.mark.parametrize("value, why", [("2023-13-01", "month must be in 1..12"),
                                        ("2023-02-30", "day is out of range for month"),
                                        ("0000-01-01", "year 0 is out of range")])
def test_impossible_dates_name_file_and_key(pack, tmp_path, value, why):
    line = edit(pack / "pack.yaml", "dpf_valid_from: 2023-07-10", f"dpf_valid_from: {value}")
    got = one_line(check(pack, tmp_path))
    assert got == (f"audit: error: {(pack / 'pack.yaml').as_posix()}, line {line}: key "
                   f"controls.PRC-05.dpf_valid_from: '{value}' is not a valid date (YYYY-MM-DD) ({why})")


def test_year_9999_is_a_date_like_any_other(pack):
    edit(pack / "pack.yaml", "dpf_valid_from: 2023-07-10", "dpf_valid_from: 9999-12-31")
    assert str(load_pack(pack).value("PRC-05", "dpf_valid_from")) == "9999-12-31"


# -- encodings and special files --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["pack.yaml", "clauses.yaml", "notice.txt"])
def test_a_file_not_in_utf8_is_one_line(pack, tmp_path, name):
    path = pack / name
    path.write_bytes(path.read_text(encoding="utf-8").replace("e", "é", 1).encode("latin-1", "replace"))
    offset = path.read_bytes().index(b"\xe9")
    assert one_line(check(pack, tmp_path)) == (f"audit: error: {path.as_posix()}: not UTF-8 text (byte 0xe9 at offset "
                                               f"{offset}); save it as UTF-8")


def test_a_fifo_named_like_the_clauses_is_refused_not_read(pack, tmp_path):
    (pack / "clauses.yaml").unlink()
    os.mkfifo(pack / "clauses.yaml")
    assert one_line(check(pack, tmp_path)) == (f"audit: error: {(pack / 'clauses.yaml').as_posix()}: "
                                               "not a regular file")


def test_a_pack_naming_a_list_as_its_notice(pack):
    edit(pack / "pack.yaml", "notice: notice.txt", "notice: [notice.txt]")
    with pytest.raises(PolicyError) as err:
        load_pack(pack)
    assert (err.value.key, err.value.why) == ("notice", "expected a file name, got ['notice.txt']")


def test_control_characters_are_one_line(pack, tmp_path):
    (pack / "pack.yaml").write_bytes(b"pack: a\x00b\ncontrols: {}\n")
    assert one_line(check(pack, tmp_path)).endswith(
        "pack.yaml: not valid YAML: unacceptable character #x0000: special characters are not allowed")
