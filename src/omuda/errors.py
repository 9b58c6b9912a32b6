"""The one exception type for failures a user can fix (bad input, bad config, bad files)."""

from __future__ import annotations

import reprlib

# Messages quote what the user gave; a value can be huge, or nested through YAML aliases
# or pickle references so that its full repr would not fit in memory.
_QUOTE = reprlib.Repr()
_QUOTE.maxlevel = 2
_QUOTE.maxstring = _QUOTE.maxother = 60
_QUOTE.maxlist = _QUOTE.maxtuple = _QUOTE.maxdict = _QUOTE.maxset = 4


class OmudaError(Exception):
    """A user-facing error: the CLI prints its message as one line and exits non-zero."""


def shorten(value: object, limit: int = 80) -> str:
    """`repr(value)` for a message, at most `limit` characters, without ever building the
    whole repr of a large or deeply nested value."""
    try:
        text = _QUOTE.repr(value)
    except Exception:  # e.g. an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
