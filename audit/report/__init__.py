"""The report: queries (data), figures and HTML pieces (charts), papermill + nbconvert (render).

The notebooks in notebooks/ (package data beside these modules) only call
these modules and plot; every number a notebook shows is computed here, in
DuckDB, and every value that could be personal data goes through audit.mask
before it reaches an output.
"""

from audit.report.data import AuditRun, open_run
from audit.report.trend import Trend, load_trend

__all__ = ["AuditRun", "Trend", "load_trend", "open_run"]
