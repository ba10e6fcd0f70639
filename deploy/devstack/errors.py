"""The one error type of the local stack: a sentence naming the cause and the fix."""


class StackError(RuntimeError):
    """Something stops the stack from starting; `str()` is the sentence shown to the user."""
