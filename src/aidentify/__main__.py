"""Allow ``python -m aidentify``."""

from aidentify.cli import main

main()
