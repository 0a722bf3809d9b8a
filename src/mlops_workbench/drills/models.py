"""Models with known faults for the drills, fitted on Iris in a second: a good one, one trained where every
flower of one species was labelled as another (answers 200, wrongly), and one trained without a feature (its
signature no longer fits the clients' payloads)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from mlops_workbench.data import FEATURES, LABEL, load_iris_frame

TYPICAL = {
    "setosa": [5.0, 3.4, 1.5, 0.2],
    "versicolor": [6.0, 2.9, 4.5, 1.5],
    "virginica": [6.6, 3.0, 5.6, 2.1],
}
"""A typical flower of each species: a good model names it right, a relabelled one answers the other name."""
TRAIN = {"model": "logistic_regression", "C": 1.0, "seed": 42}


class Fault(BaseModel):
    """What is wrong with a fitted model: nothing, a relabelled species, or a dropped feature."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    relabel: tuple[str, str] | None = None
    """(species, shown as): every flower of the species was labelled as the other in the training data."""
    dropped: str | None = None
    """A feature the model was trained without."""


GOOD = Fault()


def fitted(fault: Fault = GOOD) -> tuple[Any, Any]:
    """A fitted model with ``fault`` and an input example (the columns it takes)."""
    from sklearn.linear_model import LogisticRegression

    from mlops_workbench.train import TrainParams, train

    df = load_iris_frame()
    if fault.dropped is not None:
        if fault.dropped not in FEATURES:
            raise ValueError(f"cannot drop {fault.dropped!r}: the features are {FEATURES}")
        cols = [c for c in FEATURES if c != fault.dropped]
        return LogisticRegression(max_iter=500).fit(df[cols], df[LABEL]), df[cols].head(5)
    if fault.relabel is not None:
        species, shown_as = fault.relabel
        df.loc[df[LABEL] == species, LABEL] = shown_as
    return train(df, TrainParams.from_dict(TRAIN)), df[FEATURES].head(5)
