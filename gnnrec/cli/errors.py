"""The one error path of the ``gnnrec`` command: which exceptions are the user's to fix, and their one line."""

from __future__ import annotations

DEBUG_ENV = "GNNREC_DEBUG"
# bad data (DataFormatError), configs, suites and checkpoints (CheckpointError) are ValueErrors; files and
# folders that cannot be read or written are OSErrors; an unknown index is an IndexError
USER_ERRORS = (ValueError, OSError, IndexError)


def one_line(error: BaseException) -> str:
    """``error`` as one line; an ``OSError`` names its path (and says what to check for a permission error)."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        where = f"{error.filename}" + (f" -> {error.filename2}" if error.filename2 is not None else "")
        text = f"{error.strerror}: {where}"
        if isinstance(error, PermissionError):
            text += " (check that the folder is writable, or choose another with --out or $GNNREC_HOME)"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())
