"""Outputs of a run: the files it writes, and the run folder they land in."""
