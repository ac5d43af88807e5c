"""The one error type of the data package: a dataset that cannot be used, said in one line."""

from __future__ import annotations

from ..errors import RouserError

__all__ = ["DatasetError", "one_line"]


class DatasetError(RouserError):
    """A dataset cannot be used: the message says what is missing or broken and how to fix it."""


def one_line(text: object) -> str:
    """``text`` with line breaks and runs of spaces folded into single spaces."""
    return " ".join(str(text).split())
