"""Finals, finalize and the leaderboards."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from competition.errors import StoreError
from leaderboard import ranking
from leaderboard.store.base import StoreBase
from leaderboard.store.checks import by_team, check_id, utc
from leaderboard.store.schema import (Finalization, SubmissionRecord, competition_state, finals, invalidations,
                                      select_best_entries, select_entries, submissions, to_entry)


class FinalsPart(StoreBase):
    """Finals, finalize and the leaderboards."""

    def select_finals(self, team: str, ids: Iterable[int], now: datetime | None = None) -> list[SubmissionRecord]:
        """Choose a team's final submissions (at most ``rules.n_finals``, its own), replacing any earlier choice.

        An empty ``ids`` clears the choice (finalize then picks its best Public ones).

        Raises
        ------
        StoreError
            If finalized, the team is unknown, or an id is not one of the team's submissions.
        ParameterError
            If more ids are given than ``rules.n_finals``.
        """
        ids = list(dict.fromkeys(check_id(i) for i in ids))
        at = utc(now, "now")
        self.rules.check_finals(ids)
        with self._write() as conn:
            self._check_open(conn)
            team_id = self._team_id(conn, team, lock=True)
            name = self._name(conn, team_id)
            for sid in ids:
                owner = conn.execute(select(submissions.c.team_id).where(submissions.c.id == sid)).scalar()
                if owner is None:
                    raise StoreError(f"no submission {sid} of team {name!r}; its ids are listed by 'ships submissions'")
                if owner != team_id:
                    raise StoreError(f"submission {sid} belongs to team {self._name(conn, owner)!r}, "
                                     f"not {name!r}; a team may select only its own submissions")
                reason = conn.execute(select(invalidations.c.reason)
                                      .where(invalidations.c.submission_id == sid)).scalar()
                if reason is not None:
                    raise StoreError(f"submission {sid} was invalidated by the organiser ({reason}); "
                                     "it cannot be a final submission")
            conn.execute(finals.delete().where(finals.c.team_id == team_id))
            for sid in ids:
                conn.execute(finals.insert().values(team_id=team_id, submission_id=sid, selected_at=at, auto=False))
            return [r for r in self._records(conn, reveal=False, team_id=team_id) if r.id in ids]

    def final_ids(self) -> dict[str, list[int]]:
        """Each team's final submission ids (selected, or picked at finalize)."""
        with self._read() as conn:
            return self._final_ids(conn)

    def finalize(self, now: datetime | None = None) -> Finalization:
        """Close submissions, pick finals for teams that chose none, and reveal the Private leaderboard.

        Teams that selected no final get their ``rules.n_finals`` best Public submissions
        (ties to the earlier).  The result carries every final submission with its Private metrics.

        Raises
        ------
        StoreError
            If the competition is already finalized.
        """
        at = utc(now, "now")
        with self._write() as conn:
            self._check_open(conn, lock=True)
            records = self._records(conn, reveal=True)
            chosen = self._final_ids(conn)
            auto = []
            for team, rs in by_team(records).items():
                if team not in chosen:
                    picks = sorted((r for r in rs if r.public_score is not None and r.invalidated is None),
                                   key=lambda r: ranking.best_key(r, "public", self.rules))[:self.rules.n_finals]
                    team_id = self._team_id(conn, team)
                    for r in picks:
                        conn.execute(finals.insert().values(team_id=team_id, submission_id=r.id, selected_at=at,
                                                            auto=True))
                        auto.append(r.id)
            conn.execute(competition_state.update().where(competition_state.c.id == 1).values(finalized_at=at))
            records = self._records(conn, reveal=True)
            board = ranking.rank_private(records, self._final_ids(conn), self.rules)
            board = ranking.mark_paired_ties(board, self._replicates(conn, [r.submission_id for r in board], "private"))
            return Finalization(finalized_at=at, leaderboard=board, finals=[r for r in records if r.final],
                                auto_selected=auto)

    def is_finalized(self) -> bool:
        """True once :meth:`finalize` has run."""
        return self.finalized_at() is not None

    def finalized_at(self) -> datetime | None:
        """When the competition was finalized, or None."""
        with self._read() as conn:
            return self._finalized_at(conn)

    def leaderboard(self, private: bool = False) -> list[ranking.LeaderboardRow]:
        """The Public leaderboard, or the Private one after finalize (see :mod:`leaderboard.ranking`).

        The result is cached until :meth:`revision` changes, so serving it again costs one
        small query however many submissions there are.

        Raises
        ------
        StoreError
            If ``private`` is asked before the competition is finalized.
        """
        with self._read() as conn:
            revision = self._revision(conn)
            cached = self._boards.get(private)
            if cached is not None and cached[0] == revision:
                return list(cached[1])
            finalized = self._finalized_at(conn) is not None
            if private and not finalized:
                raise StoreError("the Private leaderboard is hidden until the competition is finalized "
                                 "(ships finalize); only the Public one is available")
            if private:
                rows = ranking.rank_private(self._entries(conn, reveal=True), self._final_ids(conn), self.rules)
            else:
                rows = self._public_rows(conn)
            part = "private" if private else "public"
            rows = ranking.mark_paired_ties(rows, self._replicates(conn, [r.submission_id for r in rows], part))
        self._boards[private] = (revision, tuple(rows))
        return rows

    def standing(self, team: str) -> tuple[int | None, int | None]:
        """``team``'s (rank, best submission id) on the Public leaderboard; (None, None) without a scored
        submission, rank None for a baseline.

        What a team is told right after a submission, at a fraction of the cost of a whole board
        on a large competition (no board is built and no tie is tested).
        """
        with self._read() as conn:
            if self.rules.feedback == "ladder":  # the standing depends on the whole history
                row = next((r for r in self._public_rows(conn) if r.team == team), None)
                return (None, None) if row is None else (row.rank, row.submission_id)
            best, _ = self._public_bests(conn)
        mine = best.get(team)
        return ranking.public_rank(team, best, self.rules), None if mine is None else mine.id

    def _public_rows(self, conn: Connection) -> list[ranking.LeaderboardRow]:
        """The Public board before tie marks; under ``'score'`` feedback from each team's best entry only."""
        if self.rules.feedback == "ladder":  # the standing depends on the whole history
            return ranking.rank_public(self._entries(conn, reveal=False), self.rules)
        best, counts = self._public_bests(conn)
        return ranking.rank_public(best.values(), self.rules, counts=counts)

    def _public_bests(self, conn: Connection) -> tuple[dict, dict]:
        """Each team's best Public entry, and its (number of entries, latest time), kept between calls.

        When only submissions were added since the last call (the revision's other parts are
        unchanged, and the new ids account for every new row: no transaction that began earlier
        committed a lower id later), the new entries alone are read and merged; otherwise each
        team's entries at its best score are read in one window query.  Either way the ranking's
        own key picks among equal scores.
        """
        parts = self._revision_parts(conn)
        known = self._bests
        if known is not None and known[0] == self.rules and known[1][2:] == parts[2:]:
            _, (count, last_id, *_), best, counts = known
            if (count, last_id) == parts[:2]:
                return best, counts
            rows = conn.execute(select_entries(reveal=False).where(submissions.c.id > (last_id or 0))).all()
            if len(rows) == parts[0] - count:
                best, counts = dict(best), dict(counts)
                self._merge_bests(best, counts, rows, counted=False)
                self._bests = (self.rules, parts, best, counts)
                return best, counts
        best, counts = {}, {}
        self._merge_bests(best, counts, conn.execute(
            select_best_entries(greater_is_better=self.rules.greater_is_better)).all(), counted=True)
        self._bests = (self.rules, parts, best, counts)
        return best, counts

    def _merge_bests(self, best: dict, counts: dict, rows, *, counted: bool) -> None:
        """Merge entry rows into ``best`` and ``counts``; ``counted``: rows of :func:`select_best_entries`."""
        def key(entry):
            return ranking.best_key(entry, "public", self.rules)

        for row in rows:
            entry = to_entry(row, False)
            if counted:
                counts[entry.team] = (row.n, row.last)
            else:
                n, last = counts.get(entry.team, (0, entry.submitted_at))
                counts[entry.team] = (n + 1, max(last, entry.submitted_at))
            if entry.public_score is not None:
                held = best.get(entry.team)
                best[entry.team] = entry if held is None else min(held, entry, key=key)

    def revision(self) -> str:
        """A short string that changes whenever a leaderboard, a final choice or the team list may change.

        For caches: equal revisions mean equal leaderboards.
        """
        with self._read() as conn:
            return self._revision(conn)
