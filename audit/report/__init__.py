"""The report: queries (data), figures and HTML pieces (charts), papermill + nbconvert (render).

The notebooks in notebooks/ (package data beside these modules) only call
these modules and plot; every number a notebook shows is computed here, in
DuckDB, and every value that could be personal data goes through audit.mask
before it reaches an output.
"""

from __future__ import annotations

import importlib

__all__ = ["AuditRun", "Trend", "load_trend", "open_run"]
# Where each name lives, imported on first use: `audit run` imports render.py (its kernels) before the
# check, and data.py's pandas would cost it ~0.4 s there for nothing.
_FROM = {"AuditRun": "data", "open_run": "data", "Trend": "trend", "load_trend": "trend"}


def __getattr__(name: str):
    if name in _FROM:
        return getattr(importlib.import_module(f"audit.report.{_FROM[name]}"), name)
    raise AttributeError(f"module 'audit.report' has no attribute {name!r}")
