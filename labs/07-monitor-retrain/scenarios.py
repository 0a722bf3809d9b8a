"""Hidden scenarios of lab 07: seeded months for the learner's drift test, planted prediction logs for the accuracy
join, and data commits for the learner's retrain. Loaded by ``checks.py``; never shipped to learners.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_workbench import data
from mlops_workbench.monitoring import scenarios
from mlops_workbench.monitoring.scenarios import Shift

ROWS = 300  # a month of hidden traffic: the size the lab's notebook uses
NO_SHIFT_MONTHS = 6
MOVE_SD = (0.7, 1.0)  # a hidden move, in standard deviations of Iris's feature


@dataclass(frozen=True)
class Month:
    frame: pd.DataFrame
    moved: str | None
    amount: float
    seed: int

    def describe(self) -> str:
        if self.moved is None:
            return f"a normal month (hidden seed {self.seed})"
        return f"a month with {self.moved} moved by {self.amount:+.1f} cm (hidden seed {self.seed})"


def months(rng: random.Random) -> list[Month]:
    """Each feature moved once (in a seeded order, size and direction), and normal months."""
    spread = data.load_iris_frame()[data.FEATURES].std()
    cases = []
    order = list(data.FEATURES)
    rng.shuffle(order)
    for feature in order:
        seed = rng.randrange(10**6)
        amount = round(rng.choice([-1, 1]) * rng.uniform(*MOVE_SD) * float(spread[feature]), 1)
        cases.append(Month(scenarios.traffic(seed, ROWS, Shift(feature=feature, amount=amount)), feature, amount, seed))
    for _ in range(NO_SHIFT_MONTHS):
        seed = rng.randrange(10**6)
        cases.append(Month(scenarios.traffic(seed, ROWS), None, 0.0, seed))
    rng.shuffle(cases)
    return cases


def planted_log(rng: random.Random) -> tuple[pd.DataFrame, pd.DataFrame, int, float]:
    """A prediction log's two tables and the right answer: requests of one to three rows, labels for some rows of
    some requests, and labels of other models' requests; (predictions, labels, labelled, accuracy)."""
    classes = list(data.CLASSES)
    predictions, labels = [], []
    right = labelled = 0
    for i in range(rng.randint(40, 80)):
        request = f"req-{rng.randrange(10**6)}-{i}"
        for row in range(rng.choice([1, 1, 2, 3])):
            predicted = rng.choice(classes)
            predictions.append({"request_id": request, "row": row, "prediction": predicted})
            if rng.random() < 0.6:
                truth = predicted if rng.random() < 0.7 else rng.choice(classes)
                labels.append({"request_id": request, "row": row, "label": truth})
                labelled += 1
                right += truth == predicted
    for i in range(rng.randint(5, 15)):  # another model's labels: not ours to count
        labels.append({"request_id": f"other-{i}", "row": 0, "label": rng.choice(classes)})
    order = list(range(len(labels)))
    rng.shuffle(order)
    return pd.DataFrame(predictions), pd.DataFrame([labels[k] for k in order]), labelled, right / labelled


def broken_frame(rng: random.Random) -> tuple[pd.DataFrame, str]:
    """Iris with one seeded schema break, and what it is (for messages)."""
    frame = data.load_iris_frame()
    row = rng.randrange(len(frame))
    kind = rng.choice(["negative", "class", "column", "empty"])
    if kind == "negative":
        frame.loc[row, rng.choice(data.FEATURES)] = -1.5
    elif kind == "class":
        frame.loc[row, data.LABEL] = "iris-unknown"
    elif kind == "column":
        frame = frame.rename(columns={data.FEATURES[rng.randrange(4)]: "width"})
    else:
        frame = frame.head(0)
    return frame, {
        "negative": "a negative measurement",
        "class": "an unknown species",
        "column": "a renamed column",
        "empty": "no rows at all",
    }[kind]


def mislabelled() -> pd.DataFrame:
    """A valid dataset whose labels are wrong: every versicolor recorded as virginica (its model loses)."""
    frame = data.load_iris_frame()
    frame.loc[frame[data.LABEL] == "versicolor", data.LABEL] = "virginica"
    return frame


def weak_month() -> pd.DataFrame:
    """The grader's first month: Iris with 20 of its 50 versicolor recorded as virginica. Its model is the
    production a good retrain beats clearly, and a wholly mislabelled retrain still loses to."""
    frame = data.load_iris_frame()
    wrong = frame.index[frame[data.LABEL] == "versicolor"][::5].union(
        frame.index[frame[data.LABEL] == "versicolor"][1::5]
    )
    frame.loc[wrong, data.LABEL] = "virginica"
    return frame


def good_data(seed: int) -> pd.DataFrame:
    """The corrected data: Iris as recorded, plus a labelled month of new flowers."""
    return pd.concat([data.load_iris_frame(), labelled_month(seed)], ignore_index=True)


def fresh_window(seed: int, n: int = 150) -> pd.DataFrame:
    return scenarios.traffic(seed, n)


def labelled_month(seed: int, n: int = 120) -> pd.DataFrame:
    frame = scenarios.traffic(seed, n)
    return frame[np.isfinite(frame[data.FEATURES]).all(axis=1)]
