"""The one exception type meant for users.

Anything a user can get wrong (a bad path, an unknown model, a corrupt file) raises
:class:`WavesmithError` with a one-line message. The CLI prints that line and exits
with status 2; any other exception is a bug in wavesmith and keeps its traceback.
"""


class WavesmithError(Exception):
    """A user-facing error: its message is one line that says what to fix."""


def one_line(e: BaseException, line: int = -1, limit: int = 200) -> str:
    """One line of a library exception's message, for a :class:`WavesmithError` that wraps it.

    ``line=-1`` (the default) takes the last line, where libsndfile and c2pa put the cause;
    ``line=0`` the first, where torch's ``load_state_dict`` and ``torch.load`` put theirs.
    An empty message gives the exception's type name.
    """
    text = str(e).strip()
    return (text.splitlines()[line] if text else type(e).__name__)[:limit]
