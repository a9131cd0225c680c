"""The harness's runs in MLflow: cross-validations, baselines, scored submissions and Private scores."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from competition.scoring import METRICS
from competition.tracking.client import PARAM_MAX, TrackerBase
from competition.tracking.models import fitted_params, flat_params, history, log_model

__all__ = ["Tracker"]


class Tracker(TrackerBase):
    """Logs the harness's runs to one MLflow tracking store (see :class:`TrackerBase` for the parameters)."""

    def log_cv(self, result, *, model: str, params: Mapping | None = None, split_hash: str = "",
               kind: str = "cv", estimator=None) -> str:
        """One parent run for a cross-validation and one child run per fold.

        Parameters
        ----------
        result : competition.cv.CVResult
        model : str
            The baseline's name (tag ``ships.model``).
        params : mapping, optional
            Extra parameters of the parent run (e.g. the estimator's, see :func:`flat_params`).
        split_hash : str
        kind : str
            ``ships.kind`` of the runs.
        estimator : estimator, optional
            Unfitted estimator whose parameters are logged.

        Returns
        -------
        str
            The parent run id.
        """
        with self._run(f"cv {model} {result.cv}", self._tags(kind, model, split_hash), action="log the CV run") as run_id:
            self._log_cv_into(run_id, result, model=model, params=params, split_hash=split_hash, kind=kind,
                              estimator=estimator)
        return run_id

    def _log_cv_into(self, run_id: str, result, *, model, params, split_hash, kind, estimator=None) -> None:
        base = {"model": model, "cv": result.cv, "n_splits": result.n_splits, "splitter": result.splitter,
                **(flat_params(estimator) if estimator is not None else {}), **(params or {})}
        metrics = {f"cv_{k}": v for k, v in result.mean.items()}
        metrics.update({f"cv_{k}_std": v for k, v in result.std.items()})
        if getattr(result, "out_of_fold", None) is not None:  # pooled out-of-fold metrics and their intervals
            metrics.update({f"cv_oof_{k}": v for k, v in result.out_of_fold.to_dict().items() if v is not None})
        self._log(run_id, metrics=metrics, params=base)
        for fold in result.folds:
            tags = self._tags(kind, model, split_hash)
            with self._run(f"fold {fold.fold}", tags, parent=run_id, action="log a fold run") as child:
                fitted = fold.estimator
                self._log(child, metrics={**fold.metrics, "fit_time": fold.fit_time, "score_time": fold.score_time},
                          params={"fold": fold.fold, "n_train": fold.n_train, "n_test": fold.n_test,
                                  **fitted_params(fitted)},
                          steps=history(fitted))

    def log_baseline(self, name: str, *, estimator, cv=None, public: Mapping | None = None,
                     submission: Path | None = None, file_sha256: str = "", team: str = "", split_hash: str = "",
                     params: Mapping | None = None, metrics: Mapping[str, float] | None = None,
                     X_example=None) -> str:
        """One run for a baseline: params, CV metrics and folds, Public metrics, model, submission, plots.

        Parameters
        ----------
        name : str
            The baseline's name (tag ``ships.model``).
        estimator : estimator
            Fitted on all of train; logged as an MLflow model (sklearn flavour, plus the
            xgboost flavour of its booster for the xgboost baseline).
        cv : competition.cv.CVResult, optional
            Its grouped cross-validation: ``cv_*`` metrics, fold child runs, and the ROC,
            precision-recall and confusion-matrix plots drawn from the out-of-fold predictions.
        public : mapping, optional
            The flat Public metrics of its scored submission (``public_*`` metrics).
        submission : path, optional
            The submission file (logged as an artifact).
        file_sha256, team, split_hash : str
            Tags.
        params, metrics : mapping, optional
            Extra parameters and metrics (e.g. ``fit_time``).
        X_example : ndarray, optional
            A few chips, for the model's signature.

        Returns
        -------
        str
            The run id.
        """
        tags = {**self._tags("baseline", name, split_hash), "ships.team": team, "ships.file_sha256": file_sha256}
        with self._run(f"baseline {name}", tags, action="log the baseline run") as run_id:
            if cv is not None:
                self._log_cv_into(run_id, cv, model=name, params=None, split_hash=split_hash, kind="baseline")
                self._log_plots(run_id, cv.y_true, cv.y_proba, f"{name}, {cv.cv} CV out-of-fold")
            self._log(run_id, metrics={**_prefixed("public", public or {}), **(metrics or {})},
                      params={**flat_params(estimator), **fitted_params(estimator), **(params or {}),
                              **({} if cv is not None else {"model": name})},
                      steps=history(estimator))
            if submission is not None:
                self._client().log_artifact(run_id, str(submission), artifact_path="submission")
            self._log_model(run_id, estimator, X_example)
        return run_id

    def log_submission(self, team: str, message: str, file_sha256: str, split_hash: str, public: Mapping,
                       *, submission_id: int | None = None, kind: str = "team") -> str:
        """One run for a scored submission: its Public metrics (``public_*``) and tags.

        Raises
        ------
        TrackingError
            When the store fails; ``ships score`` turns it into a warning (the score is stored).
        """
        tags = {**self._tags("submission", "", split_hash), "ships.team": team, "ships.file_sha256": file_sha256,
                "ships.submission_id": submission_id, "ships.team_kind": kind, "mlflow.note.content": message}
        name = f"{team} #{submission_id}" if submission_id is not None else f"{team} {file_sha256[:8]}"
        with self._run(name, tags, action="log the submission") as run_id:
            self._log(run_id, metrics=_prefixed("public", public),
                      params={"team": team, "message": message[:PARAM_MAX], "file_sha256": file_sha256})
        return run_id

    def log_private(self, rows: Iterable[Mapping]) -> list[str]:
        """At finalize only: add ``private_*`` metrics (and every ``public_*`` one) to the runs of the given submissions.

        Parameters
        ----------
        rows : iterable of mapping
            Each with ``team``, ``file_sha256`` and ``private`` (the flat Private metrics), and
            optionally ``submission_id`` and ``split_hash``.  The runs logged for that team and
            file (submission or baseline) get the metrics; a row with no such run gets a new
            submission run.

        Returns
        -------
        list of str
            The run ids that received Private metrics.
        """
        done = []
        with self._wrap("log the Private scores"):
            for row in rows:
                runs = self._find_runs(row["team"], row["file_sha256"])
                if not runs:
                    tags = {**self._tags("submission", "", row.get("split_hash", "")), "ships.team": row["team"],
                            "ships.file_sha256": row["file_sha256"], "ships.submission_id": row.get("submission_id")}
                    with self._run(f"{row['team']} private", tags) as run_id:
                        runs = [run_id]
                for run_id in runs:
                    self._log(run_id, metrics={**_prefixed("public", row.get("public") or {}),
                                               **_prefixed("private", row["private"])})
                    done.append(run_id)
        return done

    def _find_runs(self, team: str, file_sha256: str) -> list[str]:
        if not all(c in "0123456789abcdef" for c in file_sha256.lower()):
            return []  # not a SHA-256: no run can carry it
        query = f"tags.`ships.file_sha256` = '{file_sha256}'"  # hex only; the team is compared here, unquoted
        runs = self._client().search_runs([self._experiment()], filter_string=query, max_results=1000)
        return [r.info.run_id for r in runs if r.data.tags.get("ships.team") == team
                and r.data.tags.get("ships.kind") in ("submission", "baseline")]

    def _tags(self, kind: str, model: str, split_hash: str) -> dict[str, str]:
        return {"ships.kind": kind, "ships.model": model, "ships.split_hash": split_hash}

    # -- artifacts ----------------------------------------------------------------------------

    def _log_plots(self, run_id: str, y_true, y_proba, label: str) -> None:
        from competition.plots import make_plots

        client = self._client()
        for file_name, fig in make_plots(y_true, y_proba, label).items():
            client.log_figure(run_id, fig, f"plots/{file_name}")

    def _log_model(self, run_id: str, estimator, X_example=None) -> None:
        log_model(self.uri, run_id, estimator, X_example)


def _prefixed(prefix: str, scores: Mapping) -> dict[str, float]:
    """``PREFIX_NAME``, ``PREFIX_NAME_low`` and ``PREFIX_NAME_high`` for every metric of the vocabulary."""
    out = {}
    for name in METRICS:
        for key in (name, f"{name}_low", f"{name}_high"):
            if scores.get(key) is not None:
                out[f"{prefix}_{key}"] = scores[key]
    return out
