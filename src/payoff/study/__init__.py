"""Studies: designs, the runner, storage, trials and the user's own trial functions."""

from __future__ import annotations

from payoff.study._design import PlannedTrial, plan_trials
from payoff.study._function import TrialFunction, trial_function
from payoff.study._record import Predictions, StudyRecord, study_record
from payoff.study._runner import RunObserver, run
from payoff.study._storage import DEFAULT_STORAGE, storage_url
from payoff.study._study import Study, load
from payoff.study._trial import Trial

__all__ = [
    "DEFAULT_STORAGE",
    "PlannedTrial",
    "Predictions",
    "RunObserver",
    "Study",
    "StudyRecord",
    "Trial",
    "TrialFunction",
    "load",
    "plan_trials",
    "run",
    "storage_url",
    "study_record",
    "trial_function",
]
