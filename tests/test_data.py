"""The data stage: Iris loads, validates, splits, and every kind of bad dataset is rejected by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_workbench import data
from mlops_workbench.data import FEATURES, LABEL, DataValidationError


@pytest.fixture()
def iris() -> pd.DataFrame:
    return data.load_iris_frame()


def _reject(df: pd.DataFrame) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        data.validate(df)
    assert isinstance(info.value, ValueError)
    assert "Fix the data" in str(info.value)  # every error says what to do
    return info.value


def test_iris_frame_has_schema_columns_and_passes(iris):
    assert list(iris.columns) == FEATURES + [LABEL]
    assert len(iris) == 150
    assert all(iris[c].dtype == "float64" for c in FEATURES)
    assert set(iris[LABEL]) == {"setosa", "versicolor", "virginica"}
    assert data.validate(iris) is not None


def test_missing_column_is_named(iris):
    err = _reject(iris.drop(columns=["petal_width"]))
    assert "missing column 'petal_width'" in str(err)


def test_unexpected_column_is_named(iris):
    err = _reject(iris.assign(colour="blue"))
    assert "unexpected column 'colour'" in str(err)


def test_nan_is_rejected_with_row(iris):
    iris.loc[7, "sepal_width"] = np.nan
    err = _reject(iris)
    assert "'sepal_width'" in str(err) and "not_nullable" in str(err) and "[7]" in str(err)


def test_nan_label_is_rejected(iris):
    iris.loc[3, LABEL] = None
    err = _reject(iris)
    assert f"'{LABEL}'" in str(err) and "not_nullable" in str(err)


def test_wrong_dtype_is_rejected(iris):
    iris["petal_length"] = iris["petal_length"].astype(str)
    err = _reject(iris)
    assert "'petal_length'" in str(err) and "dtype('float64')" in str(err)
    assert err.problems == [p for p in err.problems if "petal_length" in p] and len(err.problems) == 1


def test_integer_features_are_the_wrong_dtype(iris):
    iris["sepal_length"] = (iris["sepal_length"] * 10).astype("int64")
    assert "dtype('float64')" in str(_reject(iris))


@pytest.mark.parametrize("value", [-1.0, 10.5, 1e6])
def test_value_out_of_range_is_rejected(iris, value):
    iris.loc[11, "sepal_length"] = value
    err = _reject(iris)
    assert "in_range" in str(err) and str(value) in str(err) and "[11]" in str(err)


def test_unknown_label_is_rejected(iris):
    iris.loc[0, LABEL] = "rose"
    err = _reject(iris)
    assert "isin" in str(err) and "'rose'" in str(err)


def test_empty_frame_is_rejected(iris):
    err = _reject(iris.iloc[0:0])
    assert "no rows" in str(err)


def test_entirely_empty_frame_names_every_missing_column():
    err = _reject(pd.DataFrame())
    for column in FEATURES + [LABEL]:
        assert f"missing column '{column}'" in str(err)


def test_several_problems_are_all_named_in_one_error(iris):
    bad = iris.drop(columns=["petal_width"])
    bad.loc[0, "sepal_length"] = np.nan
    bad.loc[1, "sepal_width"] = 42.0
    bad.loc[2, LABEL] = "rose"
    err = _reject(bad)
    text = str(err)
    assert "4 rule(s)" in text and len(err.problems) == 4
    assert "missing column 'petal_width'" in text
    assert "'sepal_length' breaks rule not_nullable" in text
    assert "'sepal_width' breaks rule in_range" in text and "42.0" in text
    assert f"'{LABEL}' breaks rule isin" in text and "'rose'" in text


def test_not_a_dataframe_is_rejected():
    with pytest.raises(DataValidationError, match="Expected a pandas DataFrame"):
        data.validate([[5.1, 3.5, 1.4, 0.2, "setosa"]])  # type: ignore[arg-type]


def test_split_is_stratified_and_seeded(iris):
    train_a, test_a = data.split(iris, test_size=0.2, seed=1)
    train_b, test_b = data.split(iris, test_size=0.2, seed=1)
    _, test_c = data.split(iris, test_size=0.2, seed=2)
    assert len(train_a) == 120 and len(test_a) == 30
    assert test_a[LABEL].value_counts().to_dict() == {"setosa": 10, "versicolor": 10, "virginica": 10}
    pd.testing.assert_frame_equal(test_a, test_b)
    pd.testing.assert_frame_equal(train_a, train_b)
    assert not test_a.equals(test_c)


def test_split_rejects_bad_test_size(iris):
    with pytest.raises(ValueError, match="test_size"):
        data.split(iris, test_size=1.5, seed=0)


def test_csv_round_trip_validates(iris, tmp_path):
    path = data.save_csv(iris, tmp_path / "sub" / "iris.csv")
    back = data.load_csv(path)
    pd.testing.assert_frame_equal(back[FEATURES], iris[FEATURES])
    assert back[LABEL].tolist() == iris[LABEL].tolist()


def test_load_csv_rejects_a_bad_file(iris, tmp_path):
    path = tmp_path / "bad.csv"
    iris.assign(**{LABEL: "tulip"}).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="tulip"):
        data.load_csv(path)


def test_save_csv_refuses_a_bad_frame(iris, tmp_path):
    with pytest.raises(DataValidationError):
        data.save_csv(iris.drop(columns=[LABEL]), tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_load_csv_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="save_csv"):
        data.load_csv(tmp_path / "nope.csv")
