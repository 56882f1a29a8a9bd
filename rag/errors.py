"""One exception type for problems the user can fix.

The CLI and the UI catch ``RagError`` and show its message as one sentence;
anything else is a bug and may show a traceback.
"""


class RagError(Exception):
    """A user-facing error: bad input, missing file, damaged or foreign index."""
