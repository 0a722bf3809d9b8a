"""Data loading: the right shape, the three species, no missing or impossible values."""

import numpy as np
from iris_model import CLASSES, FEATURES, load_data


def test_data_has_150_rows_and_4_features():
    X, y = load_data()
    assert X.shape == (150, len(FEATURES))
    assert len(y) == len(X)


def test_labels_are_the_three_species():
    _, y = load_data()
    assert set(y) == set(CLASSES)


def test_no_missing_or_impossible_values():
    X, _ = load_data()
    assert not np.isnan(X).any()
    assert (X > 0).all() and (X < 10).all()
