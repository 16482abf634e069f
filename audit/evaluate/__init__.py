"""Evaluation: the check pipeline, and the engines that run the controls (GX over DuckDB)."""
