"""The one exception type for failures a user can fix (bad input, bad config, bad files)."""


class OmudaError(Exception):
    """A user-facing error: the CLI prints its message as one line and exits non-zero."""
