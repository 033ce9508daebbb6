"""The `fc` command line: thin Typer commands over the library."""
