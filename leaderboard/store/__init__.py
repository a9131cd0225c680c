"""The store of record: teams, submissions, finals (SQLAlchemy; SQLite by default, any URL).

The only writer of records.  ``Store`` is the API; ``schema`` and ``migrations`` are its
tables and their versions.
"""

from leaderboard.store.records import Store

__all__ = ["Store"]
