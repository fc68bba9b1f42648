"""The one exception type raised for malformed dataset input."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """A dataset file is missing, empty or malformed.

    The message always names the file and, where it applies, the 1-based line.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")
