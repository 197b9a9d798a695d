"""``python -m reszoo``: the CLI, also as torchrun runs it (``torchrun -m reszoo train ...``)."""

from reszoo.cli.app import main

main()
