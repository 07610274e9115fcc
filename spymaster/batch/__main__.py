"""``python -m spymaster.batch [options]`` = ``spymaster batch [options]``."""

import sys

from spymaster.cli import main

main(["batch", *sys.argv[1:]])
