"""`audit pack init` and `audit pack check`: a pack validated whole before any run (issue 10, item 6)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audit.pack.loader import load_pack
from audit.pack.tools import check_pack, init_pack
from tests.conftest import run_audit


@pytest.fixture()
def pack(tmp_path) -> Path:
    return init_pack(tmp_path / "pack").path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, needle: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if needle in ln)


def test_init_makes_a_pack_named_after_its_folder_that_passes_check(tmp_path):
    dest = tmp_path / "shop-pack"
    proc = run_audit("pack", "init", dest)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^pack: shop-pack$", (dest / "pack.yaml").read_text(), re.M)
    proc = run_audit("pack", "check", dest)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and "no problems found" in proc.stdout
    assert f"{len(load_pack().controls)} controls" in proc.stdout
    again = run_audit("pack", "init", dest)
    assert again.returncode == 2 and again.stderr.splitlines() == [f"audit: error: {dest} exists and is not an "
                                                                   "empty folder"]


def test_init_from_a_pack_folder_keeps_its_controls(pack, tmp_path):
    (pack / "pack.yaml").write_text((pack / "pack.yaml").read_text().replace(
        "  PRC-05:\n    severity: critical", "  PRC-05:\n    off: no transfers\n    severity: critical"))
    text = (pack / "pack.yaml").read_text()
    text = re.sub(r"(  PRC-05:\n    off: no transfers\n)(    .*\n)+", r"\1", text)
    (pack / "pack.yaml").write_text(text)
    copy = init_pack(tmp_path / "copy", pack)
    assert copy.name == "copy" and copy.off("PRC-05") == "no transfers"
    assert check_pack(copy.path)[1] == []


def test_the_default_pack_passes_check():
    assert check_pack(None)[1] == []


def test_a_misspelt_column_names_the_control_file_and_the_sql_line(pack):
    path = pack / "controls" / "CMP-02.sql"
    text = path.read_text()
    first = next(ln for ln in text.split("*/\n", 1)[1].splitlines() if "received_at" in ln)
    edit(path, first, first.replace("received_at", "recieved_at"))
    proc = run_audit("pack", "check", pack)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"audit: error: {path.as_posix()}, line {line_of(path, 'recieved_at')}: key sql: ")
    assert "recieved_at" in lines[0] and proc.stdout == ""


def test_every_broken_control_is_listed_a_template_instance_by_its_own_file(pack):
    edit(pack / "controls" / "CMP-02.sql", "FROM complaints", "FROM complaint")
    retention = pack / "controls" / "RET-03.sql"
    text = retention.read_text()
    assert "template:" in text
    key = re.search(r"^([ \t]+)(\w+): (\w+_at)$", text, re.M)  # the trigger column given to the template
    retention.write_text(text.replace(key.group(0), f"{key.group(1)}{key.group(2)}: no_such_column", 1))
    errors = check_pack(pack)[1]
    assert [(Path(e.file).name, e.key) for e in errors] == [("CMP-02.sql", "sql"), ("RET-03.sql", "template")]
    assert errors[1].line == line_of(retention, "template:") and "no_such_column" in str(errors[1])


def test_stale_reads_are_named_with_the_command_that_fixes_them(pack):
    path = pack / "controls" / "CMP-02.sql"
    path.write_text(re.sub(r"^reads:\n(  .*\n)+", "reads:\n  complaints: [complaint_id]\n", path.read_text(), flags=re.M))
    errors = check_pack(pack)[1]
    assert [(e.file, e.key, e.line) for e in errors] == [(path.as_posix(), "reads", line_of(path, "reads:"))]
    assert "python -m audit.pack.reads --write" in str(errors[0])


def test_a_population_declaration_that_disagrees_with_the_cte(pack):
    # SEC-02 feeds no report view, so only the binding can notice (a view's columns are checked at load).
    path = pack / "controls" / "SEC-02.sql"
    edit(path, "  isolated: ", "  is_isolated: ")
    errors = check_pack(pack)[1]
    assert [(e.file, e.key, e.line) for e in errors] == [(path.as_posix(), "population", line_of(path, "population:"))]
    assert "undeclared: isolated" in str(errors[0]) and "not exposed: is_isolated" in str(errors[0])


def test_a_control_that_returns_other_columns(pack):
    path = pack / "controls" / "CMP-02.sql"
    text = path.read_text()
    assert "AS detail" in text
    path.write_text(text.replace("AS detail", "AS details"))
    errors = check_pack(pack)[1]
    assert [(Path(e.file).name, e.key) for e in errors] == [("CMP-02.sql", "sql")]
    assert "details" in str(errors[0])
