"""Typed errors of the ships library.

Every error the library raises on bad input derives from :class:`ShipsError`;
the CLI prints its message as ``Error: ...`` and exits 1.  Any other exception
is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "ShipsError",
    "DataError",
    "WorkspaceError",
    "ConfigError",
    "SubmissionError",
    "ParameterError",
    "StoreError",
    "ClosedError",
    "StoreUnavailableError",
    "QuotaError",
    "AuthError",
    "TrackingError",
    "ModelError",
]


class ShipsError(Exception):
    """Base class of every error caused by input rather than by a bug."""


class DataError(ShipsError):
    """The chip data is missing, corrupt or in an unknown layout."""


class WorkspaceError(ShipsError):
    """A competition workspace is missing, incomplete or has been tampered with."""


class ConfigError(WorkspaceError):
    """A setting of ships.toml is unknown, of the wrong type or out of range."""


class ParameterError(ShipsError, ValueError):
    """An argument has an invalid value (names the argument and the value)."""


class StoreError(ShipsError):
    """The leaderboard store refused an operation."""


class ClosedError(StoreError):
    """The competition no longer accepts this action (the deadline passed, or it was finalized)."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached, or stayed locked past its busy timeout; nothing was changed: try again."""


class QuotaError(StoreError):
    """A team has used its daily quota of valid submissions."""


class AuthError(StoreError):
    """A team token is missing or wrong."""


class TrackingError(ShipsError):
    """The MLflow tracking server cannot be reached or refused a request."""


class ModelError(ShipsError):
    """A model cannot be built, loaded or used as asked (weights, backend, shapes)."""


class SubmissionError(ShipsError):
    """A submission file is invalid; carries every problem found in one pass.

    Parameters
    ----------
    source : str
        Name of the file (used as the prefix of every message).
    problems : list of str
        One message per problem kind, each already holding line numbers,
        examples and the fix.
    """

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        lines = [f"{source}: {p}" for p in self.problems]
        super().__init__("\n".join(lines))
