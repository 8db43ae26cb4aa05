"""`python -m bench` runs the llmbench CLI."""

from bench.cli import main

main()
