"""MLflow tracking of cross-validations, baseline runs and scored submissions (the only importer of mlflow).

One vocabulary (docs/ARCHITECTURE.md): metrics ``cv_NAME`` / ``cv_NAME_std`` (cross-validation
mean and spread), ``public_NAME`` (+ ``_low`` / ``_high``) for scored submissions and baselines,
``private_NAME`` at finalize only, plain ``NAME`` in the per-fold child runs; tags ``ships.kind``
(cv, baseline, submission), ``ships.team``, ``ships.model``, ``ships.split_hash``,
``ships.file_sha256``.  Keras training curves (``history_``) become step metrics ``history_KEY``.

Failure policy: :meth:`Tracker.check` probes the store quickly and raises
:class:`~competition.errors.TrackingError`; ``ships cv`` and ``ships baseline run`` call it
before any training starts.  Every logging method raises ``TrackingError`` too; ``ships score``
logs after the score is stored and printed, so a tracking failure there is a warning and the
score (in leaderboard.db) is never lost.  mlflow is imported on first use, not with this module.
"""

from competition.tracking.client import DEFAULT_EXPERIMENT
from competition.tracking.models import flat_params, load_logged_model
from competition.tracking.runs import Tracker

__all__ = ["Tracker", "DEFAULT_EXPERIMENT", "flat_params", "load_logged_model"]
