"""`fc paper …`: not written yet (its helper replaces this file)."""

import typer


def register(root: typer.Typer) -> None:
    """Add this module's commands to the root app."""
