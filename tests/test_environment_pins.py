"""environment.yml and pyproject.toml pin the same versions; the lock agrees with both."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.conftest import ROOT


def pins_from_pyproject() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = data["project"]["dependencies"] + [d for extra in data["project"]["optional-dependencies"].values() for d in extra]
    return dict(_split(d) for d in deps)


def pins_from_environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return dict(_split(d) for d in pip if not d.startswith("-e"))


def _split(spec: str) -> tuple[str, str]:
    name, sep, version = spec.partition("==")
    assert sep, f"{spec} is not pinned with =="
    return re.sub(r"[-_.]+", "-", name.lower()), version


def test_every_dependency_is_pinned_and_both_files_agree():
    assert pins_from_pyproject() == pins_from_environment()


def test_python_versions_agree():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert data["project"]["requires-python"] == ">=3.11" and python == "python=3.11"


def test_lock_file_agrees_with_the_pins():
    lock = dict(_split(line) for line in (ROOT / "requirements.lock").read_text().splitlines()
                if line and not line.startswith("#"))
    for name, version in pins_from_pyproject().items():
        assert lock.get(name) == version, name
