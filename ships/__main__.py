"""``python -m ships``: the same as the ``ships`` console script."""

from ships.cli import main

main()
