"""``ships.toml``: every setting of a competition, declared once, read and written through TOML.

Each setting is a field of :class:`Config` with its type, default and help (the datasette
way); :func:`read_config` validates a file against them: an unknown key, a wrong type or an
out-of-range value is one :class:`~competition.errors.ConfigError` that names the file, the
key, the value, what is expected and the fix.  Files are parsed by :mod:`tomllib` and written
by :mod:`tomli_w`, never by hand.

``deadline`` accepts a TOML datetime (``deadline = 2026-12-31T23:59:00Z``) or an ISO 8601
string; a time without an offset is UTC.  It is held as a timezone-aware UTC datetime.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import tempfile
import tomllib
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, time, timezone
from pathlib import Path

import tomli_w

from competition.errors import ConfigError
from competition.scoring import METRICS

__all__ = ["Config", "SETTINGS", "DEFAULTS", "EDITABLE", "read_config", "write_config", "parse_config", "config_to_toml",
           "parse_value", "scoring_sha256"]

_HEADER = ("# ships competition settings (see `ships config show`).\n"
           "# The *_sha256 and split_hash lines lock the data, the test ids, the solution and the scoring\n"
           "# settings: change settings with `ships config set KEY VALUE`, never by hand.\n")


def _setting(default, help: str, *, choices=None, minimum=None, maximum=None, editable=False, scoring=False):
    return field(default=default, metadata=dict(help=help, choices=choices, minimum=minimum, maximum=maximum,
                                                editable=editable, scoring=scoring))


@dataclass(frozen=True)
class Config:
    """The settings of one competition, as stored in ``ships.toml`` (validated on read)."""

    seed: int = _setting(0, "seed of the split, the bootstrap and the baselines", minimum=0, maximum=2**32 - 1,
                         scoring=True)
    test_size: float = _setting(0.2, "fraction of the chips in the locked test set", minimum=0.01, maximum=0.5)
    public_fraction: float = _setting(0.3, "fraction of the test ids scored on the Public leaderboard",
                                      minimum=0.01, maximum=0.99)
    group_by: str = _setting("date", "what a group is: an acquisition day (date) or a scene",
                             choices=("date", "scene"))
    n_splits: int = _setting(5, "number of official cross-validation folds of the train part", minimum=2,
                             maximum=50)
    metric: str = _setting("roc_auc", "primary metric of the leaderboard (its direction comes with it)",
                           choices=tuple(METRICS), editable=True, scoring=True)
    public_precision: int = _setting(4, "decimals of the scores shown to teams before finalize", minimum=1,
                                     maximum=8, editable=True)
    feedback: str = _setting("score", "what teams see of a Public score before finalize: score (rounded, Kaggle's "
                             "way) or ladder (changes only on a significant improvement)", choices=("score", "ladder"),
                             editable=True)
    ladder_step: float = _setting(0.001, "the Ladder's margin of a significant improvement, in metric units",
                                  minimum=0.00001, maximum=0.5, editable=True)
    daily_quota: int = _setting(5, "valid submissions per team per UTC day", minimum=1, maximum=10_000,
                                editable=True)
    n_finals: int = _setting(2, "final submissions a team may select for the Private leaderboard", minimum=1,
                             maximum=10, editable=True)
    deadline: datetime | None = _setting(None, "last moment submissions are accepted (UTC); none: no deadline",
                                         editable=True)
    n_bootstrap: int = _setting(1000, "group-bootstrap resamples behind every 95% interval", minimum=100,
                                maximum=100_000, scoring=True)
    max_upload_bytes: int = _setting(5_000_000, "largest submission file accepted, in bytes", minimum=10_000,
                                     maximum=100_000_000, editable=True)
    store_url: str = _setting("", "SQLAlchemy URL of the leaderboard store; empty: WORKSPACE/leaderboard.db",
                              editable=True)
    data_sha256: str = _setting("", "SHA-256 of the chips the workspace was made from (written by init)")
    test_sha256: str = _setting("", "SHA-256 of public/test.csv (written by init, checked before scoring)")
    solution_sha256: str = _setting("", "SHA-256 of private/solution.csv (written by init, checked before scoring)")
    scoring_sha256: str = _setting("", "SHA-256 of the scoring settings (written by init and config set)")
    split_hash: str = _setting("", "identity of the split: data, seed, settings and split algorithm")

    def with_changes(self, source: str = "ships.toml", **changes) -> "Config":
        """A validated copy with ``changes`` applied (values already parsed)."""
        return parse_config({**_to_raw(self), **changes}, source)


SETTINGS = {f.name: f for f in fields(Config)}
DEFAULTS = {name: f.default for name, f in SETTINGS.items()}
EDITABLE = tuple(name for name, f in SETTINGS.items() if f.metadata["editable"])
_SCORING = tuple(name for name, f in SETTINGS.items() if f.metadata["scoring"])


def scoring_sha256(config: Config) -> str:
    """SHA-256 of the settings that scoring depends on (metric, bootstrap, seed)."""
    payload = json.dumps({k: getattr(config, k) for k in _SCORING}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def read_config(path: Path) -> Config:
    """Read and validate ``ships.toml``.

    Raises
    ------
    ConfigError
        If the file is not valid TOML, or a key is unknown, or a value has the wrong type
        or is out of range (one message naming the file, the key and the fix).
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path.name}: not UTF-8 text ({exc.reason}); restore the file written by `ships init`") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML ({exc}); fix that line or restore the file") from exc
    return parse_config(raw, path.name)


def parse_config(raw: dict, source: str = "ships.toml") -> Config:
    """Validate a mapping of settings (as :mod:`tomllib` returns them) into a :class:`Config`."""
    unknown = [k for k in raw if k not in SETTINGS]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, SETTINGS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(SETTINGS)}"
        raise ConfigError(f"{source}: unknown key {key!r}; {hint} Remove or rename it")
    return Config(**{k: _check(source, k, v) for k, v in raw.items()})


def parse_value(key: str, text: str, source: str = "ships.toml") -> object:
    """The value of ``key`` from its text on a command line (``ships config set KEY VALUE``)."""
    if key not in SETTINGS:
        close = difflib.get_close_matches(key, SETTINGS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(EDITABLE)}"
        raise ConfigError(f"{source}: unknown key {key!r}; {hint}")
    kind = _kind(SETTINGS[key])
    if kind is datetime:
        return None if text.strip().lower() in ("", "none") else text
    if kind is str:
        return _check(source, key, text)
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return _check(source, key, value)


def config_to_toml(config: Config) -> str:
    """The text of ``ships.toml`` for ``config`` (a header comment, then every setting)."""
    return _HEADER + tomli_w.dumps(_to_raw(config))


def write_config(config: Config, path: Path) -> None:
    """Write ``ships.toml`` atomically (a temporary file beside it, then a rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ships.toml.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(config_to_toml(config))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _to_raw(config: Config) -> dict:
    """Settings as TOML values (no deadline key when there is none: TOML has no null)."""
    return {k: v for k, v in asdict(config).items() if v is not None}


def _kind(f) -> type:
    return {"int": int, "float": float, "str": str}.get(f.type, datetime)


def _check(source: str, key: str, value):
    """``value`` of setting ``key`` checked against its type, bounds and choices."""
    f = SETTINGS[key]
    meta, kind = f.metadata, _kind(f)
    where = f"{source}: {key} = {_show(value)} is invalid"
    if kind is datetime:
        return _check_deadline(where, value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) or (kind is float and not math.isfinite(value)):
        raise ConfigError(f"{where}; expected {_expected(f)}. Fix the value (default: {_show(f.default)})")
    low, high, choices = meta["minimum"], meta["maximum"], meta["choices"]
    if (low is not None and value < low) or (high is not None and value > high) or \
            (choices is not None and value not in choices):
        raise ConfigError(f"{where}; expected {_expected(f)}")
    if key == "store_url" and value:
        _check_store_url(f"{source}: store_url", value)
    return value


_STORE_DRIVERS = {"sqlite": ("pysqlite",), "postgresql": ("psycopg",)}  # the backends the store is tested on


def _check_store_url(where: str, url: str) -> None:
    """A store URL of a backend and driver the store runs on (SQLite, or PostgreSQL through psycopg 3)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    expected = "expected 'sqlite:///PATH' or 'postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE'"
    hint = " (PostgreSQL is reached through psycopg 3: write postgresql+psycopg://)" if url.startswith("postgres") else ""
    try:
        parsed = make_url(url)
        shown = parsed.render_as_string(hide_password=True)
        backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    except (ArgumentError, ValueError, NoSuchModuleError):
        raise ConfigError(f"{where} is not a database URL ships can use{hint}; {expected}") from None
    if backend not in _STORE_DRIVERS or driver not in _STORE_DRIVERS[backend]:
        raise ConfigError(f"{where} = {shown!r} is not a store ships runs on{hint}; {expected}")


def _expected(f) -> str:
    meta, kind = f.metadata, _kind(f)
    if meta["choices"]:
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    name = {int: "an integer", float: "a number", str: "a string"}[kind]
    if meta["minimum"] is not None:
        return f"{name} from {meta['minimum']} to {meta['maximum']}"
    return name


def _check_deadline(where: str, value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(f"{where}; expected a TOML datetime or an ISO 8601 date and time, "
                              "e.g. 2026-12-31T23:59:00Z (UTC when no offset is given)") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time(23, 59, 59))
    if not isinstance(value, datetime):
        raise ConfigError(f"{where}; expected a TOML datetime, e.g. 2026-12-31T23:59:00Z")
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _show(value) -> str:
    text = repr(value) if not isinstance(value, datetime) else value.isoformat()
    return text if len(text) <= 60 else text[:57] + "..."

