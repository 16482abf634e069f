"""Reading the export: files -> raw and typed DuckDB views."""
