"""Submissions: recording (quota in the same transaction), rescores, listings and quota status."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import select

from competition.rules import day_bounds
from leaderboard.store.base import StoreBase
from leaderboard.store.checks import check_filename, check_message, check_sha256, check_text, name_key, utc
from leaderboard.store.schema import QuotaStatus, SubmissionRecord, rescores, submissions, teams


class SubmissionsPart(StoreBase):
    """Submissions: recording (quota in the same transaction), rescores, listings and quota status."""

    def add_submission(
        self,
        *,
        team: str,
        file_sha256: str,
        filename: str,
        message: str,
        public: Mapping,
        private: Mapping,
        split_hash: str,
        submitted_at: datetime | None = None,
        before_commit: Callable[[], None] | None = None,
        replicates: Mapping | None = None,
    ) -> SubmissionRecord:
        """Record a scored submission, in one transaction with the quota check.

        Parameters
        ----------
        team : str
            An existing team.
        file_sha256, filename, message : str
            The stored file's SHA-256, the name it was submitted under, the team's note.
        public, private : mapping
            Flat metric dicts (``roc_auc``, ``roc_auc_low``, ``roc_auc_high``, ...).
        split_hash : str
            The split the scores were computed on.
        submitted_at : datetime, optional
            Timezone-aware; default now.
        replicates : mapping, optional
            ``{"public": array, "private": array}``: the bootstrap replicates of the primary
            metric, kept for paired tie tests (see :func:`leaderboard.ranking.mark_paired_ties`).
        before_commit : callable, optional
            Called inside the transaction once the quota check passed and the row is inserted
            (e.g. to move the file into place); if it raises, nothing is recorded.

        Returns
        -------
        SubmissionRecord
            With ``private`` hidden.

        Raises
        ------
        StoreError
            If the competition is finalized or the team is unknown.
        QuotaError
            If the team has used its quota (``rules.quota_for(kind)``) for the UTC day of
            ``submitted_at``.
        ParameterError
            For a malformed argument, a message or file name with control characters.
        """
        at = utc(submitted_at, "submitted_at")
        values = dict(
            file_sha256=check_sha256(file_sha256), filename=check_filename(filename),
            message=check_message(message), submitted_at=at,
            split_hash=check_text("split_hash", split_hash, 64),
            **self._score_values("public", public), **self._score_values("private", private),
        )
        with self._write() as conn:
            self._check_open(conn)
            team_id = self._team_id(conn, team, lock=True)
            self._check_quota(conn, team_id, at)
            new_id = conn.execute(submissions.insert().values(team_id=team_id, **values)).inserted_primary_key[0]
            self._insert_replicates(conn, new_id, replicates)
            record = self._records(conn, reveal=False, submission_id=new_id)[0]
            if before_commit is not None:
                before_commit()
            return record

    def check_can_submit(self, team: str, now: datetime | None = None) -> None:
        """Refuse early a submission that :meth:`add_submission` would refuse: finalized, or the quota used.

        Cheap (no scoring, no file): call it before reading or scoring an upload.
        :meth:`add_submission` checks both again in its transaction.  An unknown team passes
        (it has used nothing).

        Raises
        ------
        ClosedError
            If the competition is finalized.
        QuotaError
            If ``team`` has used its quota for the UTC day of ``now`` (default now).
        """
        at = utc(now, "now")
        with self._read() as conn:
            self._check_open(conn, lock=False)
            team_id = conn.execute(select(teams.c.id).where(teams.c.name_key == name_key(team))).scalar()
            if team_id is not None:
                self._check_quota(conn, team_id, at)

    def add_rescore(self, submission_id: int, *, public: Mapping, private: Mapping, split_hash: str,
                    rescored_at: datetime | None = None, replicates: Mapping | None = None) -> bool:
        """Store recomputed scores for a submission if they differ from its current ones.

        The submission's original row is never changed: a rescore row is added, and the
        latest one becomes the submission's current score.

        Returns
        -------
        bool
            True if a rescore row was added, False if the scores were unchanged (no new score row;
            replicates of the current metric are added if the submission has none).

        Raises
        ------
        StoreError
            If there is no such submission.
        """
        values = dict(submission_id=submission_id, rescored_at=utc(rescored_at, "rescored_at"),
                      split_hash=check_text("split_hash", split_hash, 64),
                      **self._score_values("public", public), **self._score_values("private", private))
        with self._write() as conn:
            old = self._records(conn, reveal=True, submission_id=submission_id)[0]
            if (old.public, old.private, old.split_hash, old.public_score, old.private_score) == (
                    values["public_metrics"], values["private_metrics"], values["split_hash"],
                    values["public_score"], values["private_score"]):
                if not self._replicates(conn, [submission_id], "public"):
                    self._insert_replicates(conn, submission_id, replicates)  # stored before replicates were
                return False
            conn.execute(rescores.insert().values(**values))
            self._insert_replicates(conn, submission_id, replicates)
            return True

    def submissions(self, team: str | None = None) -> list[SubmissionRecord]:
        """Every submission (of one team if given), oldest first; Private hidden until finalize."""
        with self._read() as conn:
            reveal = self._finalized_at(conn) is not None
            team_id = None if team is None else self._team_id(conn, team)
            return self._records(conn, reveal=reveal, team_id=team_id)

    def ids_with_file(self, team: str, file_sha256: str) -> list[int]:
        """The ids of ``team``'s submissions of the file with this SHA-256, oldest first."""
        with self._read() as conn:
            team_id = self._team_id(conn, team)
            return list(conn.execute(select(submissions.c.id).where(
                submissions.c.team_id == team_id, submissions.c.file_sha256 == file_sha256).order_by(submissions.c.id))
                .scalars())

    def submission(self, submission_id: int) -> SubmissionRecord:
        """One submission; Private hidden until finalize.

        Raises
        ------
        StoreError
            If there is no such submission.
        """
        with self._read() as conn:
            return self._records(conn, reveal=self._finalized_at(conn) is not None, submission_id=submission_id)[0]

    def quota_status(self, team: str, now: datetime | None = None) -> QuotaStatus:
        """How many valid submissions ``team`` made on the UTC day of ``now``, and when that resets.

        Kinds without a quota (baselines) have ``limit`` and ``left`` None.
        """
        at = utc(now, "now")
        with self._read() as conn:
            team_id = self._team_id(conn, team)
            row = conn.execute(select(teams.c.name, teams.c.kind).where(teams.c.id == team_id)).one()
            used = self._count_day(conn, team_id, at)
        start, end = day_bounds(at)
        limit = self.rules.quota_for(row.kind)
        left = None if limit is None else max(limit - used, 0)
        return QuotaStatus(team=row.name, day=start.date(), used=used, limit=limit, left=left, resets_at=end)
