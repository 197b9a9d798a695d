"""The ``reszoo`` command line (Typer + Rich). Library code never imports this package."""
