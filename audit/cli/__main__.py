"""`python -m audit.cli`: the console script."""

from audit.cli.main import main

main()
