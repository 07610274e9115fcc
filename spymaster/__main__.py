"""``python -m spymaster`` = the ``spymaster`` command."""

from spymaster.cli import main

main()
