"""Argument checks and small conversions of the store: names, tokens, texts, times, metric values."""

from __future__ import annotations

import hashlib
import math
import numbers
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from urllib.parse import unquote

from competition.errors import ParameterError
from leaderboard.store.schema import SubmissionRecord, Team

TEAM_KINDS = ("team", "baseline")
MAX_NAME = 64
MAX_MESSAGE = 10_000
MAX_FILENAME = 255
MAX_ID = 2**63 - 1  # the largest id a 64-bit INTEGER column holds
# Characters that a terminal or a text view obeys instead of showing: the bidirectional overrides
# and isolates, and the line and paragraph separators (control characters are refused anyway).
_INVISIBLE = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")
_USERINFO = re.compile(r"(?<=://)([^:/@]*):([^@]*)@")
_PASSWORD_PARAM = re.compile(r"(?i)([?&]password=)[^&#]*")


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (tokens are random, so no salt or stretching is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def name_key(name: str) -> str:
    """The case-insensitive identity of a team name."""
    return unicodedata.normalize("NFKC", str(name)).casefold()


def check_name(name) -> str:
    """A valid team name: 1 to 64 printable characters, no leading or trailing space."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME:
        got = f"{len(name)} characters" if isinstance(name, str) else type(name).__name__
        raise ParameterError(f"team name {name!r} is invalid: expected 1 to {MAX_NAME} characters, got {got}")
    if not name.isprintable():
        bad = next(c for c in name if not c.isprintable())
        raise ParameterError(f"team name {name!r} is invalid: character {bad!r} is not printable")
    if name != name.strip():
        raise ParameterError(f"team name {name!r} is invalid: remove the leading or trailing spaces")
    return name


def check_kind(kind: str) -> str:
    if kind not in TEAM_KINDS:
        raise ParameterError(f"kind={kind!r} is invalid; expected one of {list(TEAM_KINDS)}")
    return kind


def unknown_team(name: str) -> str:
    return f"unknown team {name!r}; see 'ships team list', or create it with 'ships team add'"


def check_sha256(value) -> str:
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ParameterError(f"file_sha256={value!r} is invalid; expected 64 lowercase hex digits")
    return value


def _bad_character(text: str, allowed: str = "") -> str | None:
    """The first control, bidirectional or separator character of ``text`` not in ``allowed``, or None."""
    for c in text:
        if c not in allowed and (unicodedata.category(c) == "Cc" or c in _INVISIBLE):
            return c
    return None


def check_message(message) -> str:
    """A team's note: at most 10,000 characters, no control character other than newline and tab."""
    check_text("message", message, MAX_MESSAGE)
    bad = _bad_character(message, allowed="\n\t")
    if bad is not None:
        raise ParameterError(f"message is invalid: character {bad!r} at position {message.index(bad)} is a control "
                             "character; expected text, newlines and tabs only. Remove it and submit again")
    return message


def check_filename(filename) -> str:
    """The name a file was submitted under: 1 to 255 printable characters."""
    check_text("filename", filename, MAX_FILENAME)
    if not filename:
        raise ParameterError("filename is invalid: expected 1 to 255 characters, got an empty name")
    bad = next((c for c in filename if not c.isprintable()), None)
    if bad is not None:
        raise ParameterError(f"filename {filename!r} is invalid: character {bad!r} is not printable; "
                             "rename the file and submit again")
    return filename


def hide_password(url) -> str:
    """``url`` with its password (user info or ``password=`` parameter) shown as ``***``; works on malformed URLs."""
    return _PASSWORD_PARAM.sub(r"\1***", _USERINFO.sub(r"\1:***@", str(url)))


def scrub_password(text: str, url) -> str:
    """``text`` with ``url`` shown by :func:`hide_password` and every occurrence of its password replaced,
    on one line (a driver's message may span several: psycopg adds "Is the server running...")."""
    url = str(url)
    text = str(text).replace(url, hide_password(url))
    secrets = [m.group(2) for m in _USERINFO.finditer(url)]
    secrets += [m.group(0).split("=", 1)[1] for m in _PASSWORD_PARAM.finditer(url)]
    for secret in secrets:
        if secret and secret != "***":
            for form in {secret, unquote(secret)}:
                text = text.replace(form, "***")
    return " ".join(text.split())


def check_text(name: str, value, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        got = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
        raise ParameterError(f"{name} is invalid: expected a string of at most {limit} characters, got {got}")
    return value


def check_id(value) -> int:
    """A submission id: an integer from 1 to 2**63 - 1 (what the database holds)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"submission id {value!r} is invalid; expected an integer")
    if not 1 <= value <= MAX_ID:
        shown = str(value) if abs(value).bit_length() <= 128 else f"of {abs(value).bit_length()} bits"
        raise ParameterError(f"submission id {shown} is invalid; expected an integer from 1 to {MAX_ID}; "
                             "see 'ships submissions' for the ids")
    return int(value)


def utc(value: datetime | None, name: str) -> datetime:
    """``value`` (timezone-aware) in UTC, or now."""
    if value is None:
        return datetime.now(timezone.utc)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ParameterError(f"{name}={value!r} is invalid; expected a timezone-aware datetime")
    return value.astimezone(timezone.utc)


def clean(value, where: str):
    """A JSON-safe copy of a metric value: numpy scalars to Python numbers, NaN and inf to None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):
        return clean(value.tolist(), where)
    if isinstance(value, Mapping):
        return {str(k): clean(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v, where) for v in value]
    raise ParameterError(f"{where} is invalid: expected a number, string, list or dict, got {type(value).__name__}")


def to_team(row) -> Team:
    return Team(name=row.name, kind=row.kind, created_at=row.created_at, has_token=row.token_hash is not None)


def by_team(records: Iterable[SubmissionRecord]) -> dict[str, list[SubmissionRecord]]:
    out: dict[str, list[SubmissionRecord]] = {}
    for r in records:
        out.setdefault(r.team, []).append(r)
    return out
