"""`python -m minispec` is the `minispec` command."""

from minispec.cli import main

main(prog_name="minispec")
