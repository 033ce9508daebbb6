"""The one exception a user can cause: its message is written for the user."""


class FcError(Exception):
    """Bad input (a file, an option, an exchange answer). The CLI prints it on one line, exit 2."""
