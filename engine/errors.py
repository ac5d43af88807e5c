"""Errors that are the user's to fix: the CLI and the dashboard show their message as one line, no traceback."""


class RouserError(Exception):
    """A problem with the user's input, files or settings; the message names it and the fix."""
