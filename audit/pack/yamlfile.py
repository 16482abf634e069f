"""Reading a pack's files: UTF-8 text, and YAML that refuses what would mislead.

Every YAML file of a pack (pack.yaml, clauses.yaml, contract.yaml, the header
of each control file) and the waivers file go through `parse_yaml`: no anchors
or aliases, no key twice in a mapping, no .inf/.nan, only real dates. It also
returns the line of every key, so that later checks (pydantic models, values)
name the line as well as the key.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from audit.errors import PolicyError, first_line

# {dotted key ("controls.RET-01.period_days", "clauses[3].quote"): line}
Lines = dict[str, int]


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors and aliases (`&name`, `*name`).

    A pack or a waivers file never needs them, and nested aliases expand
    exponentially ("billion laughs": 4 KB of YAML, billions of values for
    whatever walks the result). Refused where they appear, with their line.
    """

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise RefusedYAML(None, None, "YAML anchors and aliases (&name, *name) are not allowed; write the "
                                          "values out", event.start_mark)
        return super().compose_node(parent, index)


class RefusedYAML(yaml.composer.ComposerError):
    """Valid YAML that StrictLoader refuses (an anchor or an alias)."""


# What a scalar of each implicit type must be, for messages about one that cannot be built.
_SCALAR_KINDS = {"tag:yaml.org,2002:timestamp": "date (YYYY-MM-DD)", "tag:yaml.org,2002:int": "whole number",
                 "tag:yaml.org,2002:float": "number"}


def read_text(path: Path, label: str) -> str:
    """A pack file's text; a missing, special (FIFO, device) or non-UTF-8 file is a PolicyError."""
    if not path.is_file():
        raise PolicyError(label, None, "file not found" if not path.exists() else "not a regular file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(label, None, f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                                       f"{exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise PolicyError(label, None, f"cannot be read ({exc.strerror or exc})") from None


def load_yaml(path: Path) -> tuple[Any, Lines]:
    """A pack file's YAML and the line of each key."""
    label = path.as_posix()
    return parse_yaml(read_text(path, label), label)


def parse_yaml(text: str, label: str, first: int = 1) -> tuple[Any, Lines]:
    """YAML text (starting at line `first` of its file) and the line of each key; errors are PolicyErrors."""
    loader = None
    shift = first - 1
    try:
        loader, node = _compose(text)
        if node is None:
            return None, {}
        lines: Lines = {}
        _check_node(loader, node, None, label, lines, shift)
        return loader.construct_document(node), lines
    except RefusedYAML as exc:
        raise PolicyError(label, None, exc.problem, exc.problem_mark.line + 1 + shift) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        why = exc.problem or exc.context or "syntax error"
        raise PolicyError(label, None, f"not valid YAML: {why}", mark.line + 1 + shift if mark else None) from None
    except yaml.YAMLError as exc:
        raise PolicyError(label, None, f"not valid YAML: {first_line(exc)}") from None
    except RecursionError:
        raise PolicyError(label, None, "not valid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def _compose(text: str) -> tuple[yaml.SafeLoader, yaml.Node | None]:
    """The loader and the document's node tree: by libyaml when it can, else by StrictLoader.

    libyaml composes ~10x faster than pure Python (a pack's 30-odd YAML
    documents are read by every check and every report). Without `&` and `*`
    the text holds no anchor or alias, so StrictLoader's refusal has nothing to
    refuse; text with either, text libyaml rejects (so that the message is
    StrictLoader's, with its line), or a PyYAML without libyaml: StrictLoader.
    """
    if _CLoader is not None and "&" not in text and "*" not in text:
        loader = _CLoader(text)
        try:
            return loader, loader.get_single_node()
        except yaml.YAMLError:
            loader.dispose()
    loader = StrictLoader(text)
    try:
        return loader, loader.get_single_node()
    except BaseException:
        loader.dispose()
        raise


_CLoader = getattr(yaml, "CSafeLoader", None)


def _check_node(loader: StrictLoader, node: yaml.Node, key: str | None, label: str, lines: Lines,
                shift: int) -> None:
    """Refuse, naming key and line: a key given twice, a scalar that cannot be built (2023-13-01), .inf and .nan.

    PyYAML lets the last of two equal keys win silently, and builds `.inf`,
    `.nan` and impossible dates into values (or a ValueError) far from the line.
    """
    line = node.start_mark.line + 1 + shift
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for knode, vnode in node.value:
            name = str(knode.value) if isinstance(knode, yaml.ScalarNode) else "?"
            sub = f"{key}.{name}" if key else name
            kline = knode.start_mark.line + 1 + shift
            if name in seen and name != "?":
                raise PolicyError(label, sub, f"given twice (first at line {seen[name]})", kline)
            seen[name] = kline
            lines[sub] = kline
            _check_node(loader, vnode, sub, label, lines, shift)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = f"{key or ''}[{i}]"
            lines[sub] = item.start_mark.line + 1 + shift
            _check_node(loader, item, sub, label, lines, shift)
    elif node.tag in _SCALAR_KINDS:
        try:
            value = loader.construct_object(node)
        except (ValueError, OverflowError) as exc:
            raise PolicyError(label, key, f"{node.value!r} is not a valid {_SCALAR_KINDS[node.tag]} ({exc})",
                              line) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise PolicyError(label, key, f"expected a finite number, got {node.value}", line)
