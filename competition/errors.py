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

    The text is bounded whatever the input: control characters in the source
    and the problems are escaped (``\\x1b``), the source is cut to
    :attr:`MAX_SOURCE_CHARS`, each problem to :attr:`MAX_PROBLEM_CHARS`, and the
    whole message to :attr:`MAX_CHARS` (the problems that do not fit are counted).

    Parameters
    ----------
    source : str
        Name of the file (used as the prefix of every message).
    problems : list of str
        One message per problem kind, each already holding line numbers,
        examples and the fix.
    """

    MAX_SOURCE_CHARS = 120
    MAX_PROBLEM_CHARS = 1000
    MAX_CHARS = 4096

    def __init__(self, source: str, problems: list[str]):
        self.source = _printable(str(source), self.MAX_SOURCE_CHARS)
        self.problems = _fit(self.source, list(problems), self.MAX_PROBLEM_CHARS, self.MAX_CHARS)
        super().__init__("\n".join(f"{self.source}: {p}" for p in self.problems))


def _printable(text: str, limit: int) -> str:
    """``text`` with non-printable characters escaped as in ``repr``, cut to ``limit`` characters."""
    if len(text) <= limit and text.isprintable():
        return text
    pieces, size = [], 0
    for char in text[:limit]:
        piece = char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        if size + len(piece) > limit - 3:
            return "".join(pieces) + "..."
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces) + ("..." if len(text) > limit else "")


def _fit(source: str, problems: list[str], max_problem: int, max_chars: int) -> list[str]:
    """The problems, escaped, that fit in ``max_chars`` with their prefix, then a count of the others."""
    kept, size, room = [], 0, max_chars - len(source) - 90  # 90: the line that counts the others
    for k, problem in enumerate(problems):
        shown = _printable(str(problem), max_problem)
        size += len(source) + len(shown) + 3
        if size > (max_chars if k == len(problems) - 1 else room):
            return kept + [f"{len(problems) - k} more problems not shown; fix the ones above and validate again"]
        kept.append(shown)
    return kept
