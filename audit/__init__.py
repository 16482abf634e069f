"""Privacy compliance audit workbench: exports -> DuckDB views -> controls -> findings."""

__version__ = "0.1.0"
