"""The one exception type meant for users.

Anything a user can get wrong (a bad path, an unknown model, a corrupt file) raises
:class:`WavesmithError` with a one-line message. The CLI prints that line and exits
with status 2; any other exception is a bug in wavesmith and keeps its traceback.
"""


class WavesmithError(Exception):
    """A user-facing error: its message is one line that says what to fix."""
