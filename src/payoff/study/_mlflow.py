"""Export a study to MLflow: one run per trial, nested under a run for the study."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from payoff._errors import ConfigError
from payoff.study._study import trial_params

if TYPE_CHECKING:
    from payoff.study._study import Study


def export_mlflow(
    study: Study,
    tracking_uri: str,
    *,
    experiment: str | None = None,
    report: str | Path | None = None,
) -> list[str]:
    """Write every finished trial to MLflow; return the run ids (trials first, then the study).

    Lever settings and the seed become params; returns and costs become metrics; the per-epoch
    curve becomes metric history; the report (an HTML file) is logged on the study's run.
    Exporting again adds only trials not exported before.

    Raises:
        ConfigError: MLflow is missing, or the tracking URI cannot be used.
    """
    try:
        import mlflow
        from mlflow.entities import Metric, Param, RunStatus
    except ImportError:
        raise ConfigError("MLflow export needs mlflow: pip install 'payoff[mlflow]'.") from None
    name = experiment or f"payoff-{study.name}"
    try:
        client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        found = client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found else client.create_experiment(name)
    except Exception as err:  # MLflow raises many kinds for a bad URI; all are the user's
        raise ConfigError(f"cannot use MLflow tracking URI {tracking_uri!r}: {err}") from None
    parent = _study_run(client, experiment_id, study)
    done = {
        r.data.tags.get("payoff.trial")
        for r in client.search_runs([experiment_id], f"tags.`payoff.study` = '{study.name}'")
    }
    ids = []
    for t in study.trials():
        if str(t.number) in done or t.user_attrs.get("interrupted"):
            continue
        run = client.create_run(
            experiment_id,
            run_name=f"trial-{t.number}",
            tags={
                "payoff.study": study.name,
                "payoff.trial": str(t.number),
                "payoff.state": t.state.name,
                "mlflow.parentRunId": parent,
                **(
                    {"payoff.fail_reason": t.user_attrs["fail_reason"][:5000]}
                    if "fail_reason" in t.user_attrs
                    else {}
                ),
            },
        )
        stamp = int(t.datetime_start.timestamp() * 1000) if t.datetime_start else 0
        params = [Param(k, str(v)) for k, v in trial_params(t).items()]
        metrics = [
            Metric(k, float(v), stamp, 0)
            for k, v in t.user_attrs.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        ]
        for point in json.loads(t.user_attrs.get("curve", "[]")):
            step = int(point.get("epoch", 0))
            metrics += [
                Metric(f"curve.{k}", float(v), stamp, step)
                for k, v in point.items()
                if k != "epoch" and math.isfinite(float(v))
            ]
        for start in range(0, max(len(metrics), 1), 900):  # MLflow caps a batch at 1,000
            client.log_batch(
                run.info.run_id,
                metrics=metrics[start : start + 900],
                params=params if start == 0 else [],
            )
        status = RunStatus.FINISHED if t.state.name == "COMPLETE" else RunStatus.FAILED
        client.set_terminated(run.info.run_id, status=RunStatus.to_string(status))
        ids.append(run.info.run_id)
    if report is not None:
        client.log_artifact(parent, str(report))
    return [*ids, parent]


def _study_run(client: object, experiment_id: str, study: Study) -> str:
    """Return the study's parent run, creating it on first export."""
    runs = client.search_runs(  # type: ignore[attr-defined]
        [experiment_id], f"tags.`payoff.study_run` = '{study.name}'"
    )
    if runs:
        return str(runs[0].info.run_id)
    run = client.create_run(  # type: ignore[attr-defined]
        experiment_id, run_name=study.name, tags={"payoff.study_run": study.name}
    )
    config = study.config
    client.log_dict(run.info.run_id, config.model_dump(mode="json"), "study.json")  # type: ignore[attr-defined]
    return str(run.info.run_id)
