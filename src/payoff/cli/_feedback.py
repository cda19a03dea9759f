"""`payoff feedback`: newly labelled rows join a study's training set for its next run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import payoff
from payoff.cli._app import StorageOpt, _user_errors, app, console


@app.command()
def feedback(
    study: Annotated[str, typer.Argument(help="The study's name.")],
    file: Annotated[Path, typer.Argument(help="CSV of labelled rows: features and a label.")],
    label: Annotated[
        str | None,
        typer.Option("--label", help="The label column [default: task.label, else 'label']."),
    ] = None,
    usd_per_label: Annotated[
        float | None,
        typer.Option("--usd-per-label", help="What one label cost [default: the study's price]."),
    ] = None,
    allow_new_categories: Annotated[
        bool,
        typer.Option("--allow-new-categories", help="Accept categories never seen in training."),
    ] = False,
    storage: StorageOpt = None,
) -> None:
    """Add labelled rows to a study; the next `payoff run` trains on them and prices them."""
    from payoff.study._feedback import add_feedback

    with _user_errors():
        s = payoff.load(study, storage)
        batch = add_feedback(
            s,
            file,
            label=label,
            usd_per_label=usd_per_label,
            allow_new_categories=allow_new_categories,
        )
    console.print(
        f"added {batch.n_rows} labelled rows to {s.name} (data version {batch.data_version}): "
        f"labels ${batch.cost_usd_labels:.2f} at ${batch.usd_per_label:g} each; the training "
        f"set is now {batch.n_train} rows. Run the study again to train on them; earlier "
        "trials are kept under their data version.",
        highlight=False,
    )
