"""What the CLI reports as the operator's mistake (exit 2) or as a failure of the work (exit 1),
kept apart from the modules that do the work so the commands load fast."""

from __future__ import annotations


class UsageError(Exception):
    """Something the operator asked for that does not exist: exit code 2."""


class UnknownTopic(UsageError, LookupError):
    """A topic the cluster does not have (or not under this CHATSHARE_TOPIC_PREFIX)."""


class NoSuchLetter(UsageError, LookupError):
    """No dead letter at that offset, or one in several partitions."""


class OperationFailed(Exception):
    """The work could not be done as asked: exit code 1."""


class ReplayRunning(OperationFailed):
    """Another replay of the share views holds the replay lock."""


class SwapRefused(OperationFailed):
    """The live table stayed locked by others through every attempt."""
