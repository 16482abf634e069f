"""The documentation against the code, after datasette's tests/test_docs.py.

Every `audit ...` command line shown in README.md and docs/**/*.md (code spans and
fenced blocks) names a command that exists, with options that command has;
every command and option of the CLI is shown in some command line; every
control id the docs name is a control of a bundled pack (or WVR-01, the
waivers' own), and docs/controls.md has a row for every control of the
default pack. The CLI is read by introspecting its click group, the catalogue
through tests/conftest.py, so neither is restated here.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from audit.cli.main import cli
from audit.evaluate.waivers import WVR_ID
from tests.conftest import ROOT, bundled_pack_ids, catalogue_ids

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
# A code span may wrap across lines, never across paragraphs.
SPAN = re.compile(r"`((?:[^`\n]|\n(?!\n))+)`")
# One command of a shell line: split at ; && || and unescaped | (a table cell writes a choice as mixed\|csv).
COMMAND_SEP = re.compile(r";|&&|\|\||(?<!\\)\|")
# `audit`, then the words naming a command (none: the group itself, as in `audit --version`).
INVOCATION = re.compile(r"(^|[\s/(=])audit((?:\s+[a-z][a-z-]*)*)(?=\s|$)")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z-]*)")
CONTROL_ID = re.compile(r"\b[A-Z]{2,4}-\d{2}\b")
# The options every command has, that no page needs to show.
IMPLICIT = {"--help"}


def _code(text: str) -> list[str]:
    """The shell text of a page: each fenced block's lines (continuations joined, comments cut), each code span."""
    pieces = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            pieces.append(re.sub(r"(^|\s)#.*", "", line))
    pieces += [" ".join(span.split()) for span in SPAN.findall(FENCE.sub("", text))]
    return pieces


def _resolve(words: list[str]) -> tuple[tuple[str, ...], click.Command, list[str]]:
    """The command path the words name, that command, and the words left over (its arguments)."""
    path, command = (), cli
    while words and isinstance(command, click.Group) and words[0] in command.commands:
        command = command.commands[words[0]]
        path, words = (*path, words[0]), words[1:]
    return path, command, words


def invocations(text: str) -> list[tuple[tuple[str, ...], click.Command, list[str], list[str]]]:
    """(command path, command, words left over, options) of every `audit ...` shown in a page's code."""
    out = []
    for piece in _code(text):
        for part in COMMAND_SEP.split(piece):
            for m in INVOCATION.finditer(part):
                path, command, rest = _resolve(m.group(2).split())
                # Prose in a block ("run the audit after each month") is no command line: an unknown
                # command counts only where a command starts (the line's start, a path, ExecStart=).
                if path or not part[:m.start()].strip() or m.group(1) in "/=":
                    out.append((path, command, rest, OPTION.findall(part[m.end():])))
    return out


def shown_invocations() -> list[tuple[str, tuple[str, ...], click.Command, list[str], list[str]]]:
    """(page, command path, command, words left over, options) of every `audit ...` shown in the docs."""
    return [(page.relative_to(ROOT).as_posix(), *found) for page in DOCS for found in invocations(page.read_text(encoding="utf-8"))]


def cli_commands() -> dict[tuple[str, ...], click.Command]:
    """Every command and group of the CLI, by path (the top group is ())."""
    found = {}

    def walk(path, command):
        found[path] = command
        for name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                walk((*path, name), sub)

    walk((), cli)
    return found


def options_of(command: click.Command) -> set[str]:
    """The long options of a command (the CLI has no short ones but click's own)."""
    return {o for p in command.params if isinstance(p, click.Option) and not p.hidden
            for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}


def test_the_docs_show_command_lines():
    shown = shown_invocations()
    assert {page for page, *_ in shown} >= {"README.md", "docs/periodic-audits.md"}
    assert any(path == ("check",) and "--exports" in options for _, path, _, _, options in shown)


def test_every_command_line_shown_exists_with_its_options():
    wrong = []
    for page, path, command, rest, options in shown_invocations():
        if isinstance(command, click.Group) and rest and not rest[0].isupper():
            wrong.append(f"{page}: {' '.join(('audit', *path, rest[0]))}: no such command")
        unknown = sorted(set(options) - options_of(command) - IMPLICIT)
        if unknown:
            wrong.append(f"{' '.join(('audit', *path))}: {', '.join(unknown)} shown in {page}, not an option of it")
    assert wrong == []


def test_every_command_and_option_is_documented():
    shown: dict[tuple[str, ...], set[str]] = {}
    for _, path, _, _, options in shown_invocations():
        shown.setdefault(path, set()).update(options)
    missing = []
    for path, command in cli_commands().items():
        if path not in shown and not isinstance(command, click.Group):
            missing.append(f"{' '.join(('audit', *path))}: no page shows it")
            continue
        # A group is documented through its commands; its own options (none today) would need a line of their own.
        for option in sorted(options_of(command) - shown.get(path, set()) - IMPLICIT):
            missing.append(f"{' '.join(('audit', *path, option))}: no page shows it")
    assert missing == []


def _named_ids(text: str) -> set[str]:
    return set(CONTROL_ID.findall(text))


def test_every_control_id_named_in_the_docs_is_a_control_of_a_bundled_pack():
    known = {cid for ids in bundled_pack_ids().values() for cid in ids} | {WVR_ID}
    assert set(catalogue_ids()) < known
    unknown = {f"{page.relative_to(ROOT)}: {cid}" for page in DOCS for cid in _named_ids(page.read_text(encoding="utf-8"))
               if cid not in known}
    assert unknown == set()


def test_docs_controls_has_a_row_for_every_control_of_the_default_pack():
    rows = re.findall(r"^\|\s*([A-Z]{2,4}-\d{2})\s*\|", (ROOT / "docs" / "controls.md").read_text(encoding="utf-8"),
                      re.M)
    assert len(rows) == len(set(rows))
    assert rows == catalogue_ids()


@pytest.mark.parametrize("text, found", [
    ("`audit check --exports DIR [--as-of DATE\\|TIMESTAMP] --out DIR`",
     [(("check",), ["--exports", "--as-of", "--out"])]),
    ("```sh\n.venv/bin/audit run --exports x \\\n    --fail-on high >>log 2>&1; audit ledger verify  # --nope\n```\n",
     [(("run",), ["--exports", "--fail-on"]), (("ledger", "verify"), [])]),
    ("`audit frobnicate --x`, `audit-workbench`, `audit/report/`, `audit: error: x`, `audit --version`",
     [((), ["--x"]), ((), ["--version"])]),
    ("`audit backfill --exports DIR\n--out runs/`\n\n```ini\nDescription=the audit after each month\n```\n",
     [(("backfill",), ["--exports", "--out"])]),
])
def test_command_lines_are_found_in_spans_and_blocks(text, found):
    assert [(path, options) for path, _, _, options in invocations(text)] == found
