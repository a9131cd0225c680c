"""Invalidations: the organiser's append-only record that a submission no longer counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from competition.errors import StoreError
from leaderboard.store.base import StoreBase
from leaderboard.store.checks import check_id, check_text, utc
from leaderboard.store.schema import SubmissionRecord, finals, invalidations

_MAX_REASON = 1000


class InvalidationsPart(StoreBase):
    """Invalidations: the organiser's append-only record that a submission no longer counts."""

    def invalidate(self, submission_id: int, reason: str, now: datetime | None = None) -> SubmissionRecord:
        """Record that a submission no longer counts: it leaves every leaderboard, cannot be a
        final, and is shown marked with the reason. The submission itself is never changed.

        Raises
        ------
        StoreError
            If there is no such submission, it is invalidated already, or the competition is
            finalized (the final standing is not rewritten).
        ParameterError
            If the reason is empty or longer than 1000 characters.
        """
        submission_id = check_id(submission_id)
        reason = check_text("reason", reason, _MAX_REASON).strip()
        if not reason:
            raise StoreError("an invalidation needs a reason (--reason TEXT), shown with the submission")
        try:
            with self._write() as conn:
                self._check_open(conn)
                record = self._records(conn, reveal=False, submission_id=submission_id)[0]
                if record.invalidated is not None:
                    raise StoreError(f"submission {submission_id} is invalidated already ({record.invalidated})")
                conn.execute(invalidations.insert().values(submission_id=submission_id, reason=reason,
                                                           invalidated_at=utc(now, "now")))
                conn.execute(finals.delete().where(finals.c.submission_id == submission_id))  # no longer a final
                self._bump_edits(conn)
                return self._records(conn, reveal=False, submission_id=submission_id)[0]
        except IntegrityError as exc:  # invalidated meanwhile by another connection
            raise StoreError(f"submission {submission_id} is invalidated already") from exc

    def invalidated_ids(self) -> dict[int, str]:
        """Every invalidated submission id with its reason."""
        with self._read() as conn:
            return dict(conn.execute(select(invalidations.c.submission_id, invalidations.c.reason)).all())
