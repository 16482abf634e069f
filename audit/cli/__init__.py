"""The `audit` command line: thin commands over the library."""
