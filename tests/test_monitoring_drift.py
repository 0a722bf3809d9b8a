"""Drift, skew, accuracy and its estimate, the seeded traffic and the HTML report: pure functions, no server."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from pydantic import ValidationError

from mlops_workbench import data, train
from mlops_workbench.errors import InputError
from mlops_workbench.monitoring import drift, estimate, reference, report, scenarios
from mlops_workbench.monitoring.drift import EmptyWindowError, NoLabelsError, Thresholds
from mlops_workbench.monitoring.predictions import Window, moment
from mlops_workbench.monitoring.scenarios import Shift
from mlops_workbench.workbench import Workbench

F = data.FEATURES


@pytest.fixture(scope="module")
def split():
    return data.split(data.load_iris_frame(), test_size=0.2, seed=42)


@pytest.fixture(scope="module")
def model(split):
    return train.train(split[0], {"C": 1.0})


@pytest.fixture(scope="module")
def ref(split, model) -> reference.ReferenceStats:
    return reference.compute(split[0], model, holdout=split[1])


def window(model, frame, **kw) -> Window:
    return scenarios.scored_window(frame, model, **kw)


# ---------------------------------------------------------------- the measures, against hand-computed values


def test_psi_matches_hand_computed_values():
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert drift.psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5))
    # an empty bin counts as 1e-4, not as zero (whose logarithm is infinite)
    empty = 0.5 * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert drift.psi([0.5, 0.5], [1.0, 0.0]) == pytest.approx(empty)
    with pytest.raises(InputError, match="same length"):
        drift.psi([0.5, 0.5], [1.0])


def test_ks_matches_hand_computed_values():
    # disjoint samples of 4: the CDFs differ by 1; exact p = 2 / C(8, 4) (either side all smaller)
    assert drift.ks([1, 2, 3, 4], [5, 6, 7, 8]) == pytest.approx((1.0, 2 / math.comb(8, 4)))
    assert drift.ks([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx((0.0, 1.0))
    with pytest.raises(InputError, match="at least one value"):
        drift.ks([], [1.0])


def test_chi2_matches_hand_computed_values():
    # [[50, 50], [30, 70]]: expected [[40, 60], [40, 60]], chi2 = 2 * (100/40 + 100/60), one degree of freedom
    statistic, p_value = drift.chi2({"a": 50, "b": 50}, {"a": 30, "b": 70})
    assert statistic == pytest.approx(2 * (100 / 40 + 100 / 60))
    assert p_value == pytest.approx(math.erfc(math.sqrt(statistic / 2)))
    assert drift.chi2({"a": 10}, {"a": 3}) == (0.0, 1.0)  # one class on both sides
    assert drift.chi2({"a": 5, "b": 5}, {"a": 5, "b": 5}) == pytest.approx((0.0, 1.0))


def test_bins_are_quantiles_and_ties_merge_them():
    assert reference.proportions([1, 2, 3, 4, 5], [2, 4]) == pytest.approx([0.2, 0.4, 0.4])
    assert reference.bin_edges(list(range(1, 11)), bins=2) == [5.5]
    assert reference.bin_edges([1.0] * 9 + [2.0], bins=5) == [1.0]  # every inner quantile is 1.0: one edge
    with pytest.raises(InputError, match="empty"):
        reference.proportions([], [1.0])


def test_thresholds_refuse_impossible_values():
    for bad in ({"alpha": 0}, {"alpha": 1.5}, {"psi": -0.1}, {"level": 1}):
        with pytest.raises(ValidationError):
            Thresholds.model_validate(bad)


# ---------------------------------------------------------------- reference statistics (pure part)


def test_reference_statistics_describe_the_training_rows(split, model, ref):
    train_df = split[0]
    assert ref.rows == len(train_df) and ref.feature_names == F and ref.data_hash_kind == "frame-sha256"
    for f in ref.features:
        assert sum(f.proportions) == pytest.approx(1.0) and len(f.proportions) == len(f.edges) + 1
        assert f.values == sorted(train_df[f.name]) and f.mean == pytest.approx(train_df[f.name].mean())
    assert sum(ref.prediction_counts.values()) == len(train_df) == sum(ref.label_counts.values())
    assert ref.holdout is not None and len(ref.holdout.confidence) == len(ref.holdout.correct) == len(split[1])
    expected = split[1][data.LABEL] == model.predict(split[1][F])
    assert ref.holdout.correct == expected.tolist() and min(ref.holdout.confidence) > 1 / 3
    assert estimate.reference_calibration(ref).rows == len(split[1])
    with pytest.raises(InputError, match="no held-out split"):
        estimate.reference_calibration(reference.compute(train_df, model))
    assert reference.compute(train_df, model).data_hash == ref.data_hash  # the same rows hash the same
    moved = train_df.assign(sepal_length=train_df.sepal_length + 0.1)
    assert reference.compute(moved, model).data_hash != ref.data_hash
    assert reference.compute(train_df, model, data_hash="abc").data_hash_kind == "dvc-md5"
    with pytest.raises(InputError, match=r"misses the columns \['species'\]"):
        reference.compute(train_df[F], model)
    with pytest.raises(InputError, match="Unknown feature 'petal_area'"):
        ref.feature("petal_area")


# ---------------------------------------------------------------- caught shifts, quiet windows


def test_traffic_is_seeded_and_iris_like(split):
    a, b = scenarios.traffic(3), scenarios.traffic(3)
    assert a.equals(b) and not a.equals(scenarios.traffic(4))
    assert list(a.columns) == [*F, data.LABEL] and len(a) == scenarios.ROWS
    data.validate(a)  # valid Iris rows: in range, known classes
    later = scenarios.later_month(3)
    moved = (later[scenarios.DEFAULT_SHIFT.feature] - a[scenarios.DEFAULT_SHIFT.feature]).round(6)
    assert set(moved) <= {scenarios.DEFAULT_SHIFT.amount, round(10.0 - a[scenarios.DEFAULT_SHIFT.feature].max(), 6)}
    assert later.drop(columns=scenarios.DEFAULT_SHIFT.feature).equals(a.drop(columns=scenarios.DEFAULT_SHIFT.feature))
    with pytest.raises(InputError, match="unknown feature 'petal_area'"):
        scenarios.traffic(1, shift=Shift(feature="petal_area", amount=1.0))


@pytest.mark.parametrize("rows", [100, 200])
def test_windows_without_shift_raise_no_drift(model, ref, rows):
    for seed in range(15):
        found = drift.detect(ref, window(model, scenarios.traffic(seed, rows)))
        assert not found.drifted, (seed, found.frame().to_dict("records"))


@pytest.mark.parametrize("feature", F)
def test_one_feature_moved_by_three_quarters_of_its_spread_is_caught(model, ref, feature):
    amount = 0.75 * ref.feature(feature).std
    for seed in range(8):
        found = drift.detect(
            ref, window(model, scenarios.traffic(100 + seed, shift=Shift(feature=feature, amount=amount)))
        )
        assert found.drifted and set(found.drifted_features) <= {feature, drift.PREDICTION}, (seed, found.frame())
        assert feature in found.drifted_features


def test_the_default_later_month_is_caught_and_its_report_holds_every_measure(model, ref):
    for seed in range(10):
        found = drift.detect(ref, window(model, scenarios.later_month(seed)))
        assert scenarios.DEFAULT_SHIFT.feature in found.drifted_features
    table = found.frame()
    assert list(table.feature) == [*F, drift.PREDICTION] and list(table.test) == ["ks"] * 4 + ["chi2"]
    assert (table.alpha == 0.01).all() and (table.psi_threshold == 0.1).all()
    gauges = found.scores()  # what the monitor service exports
    assert (
        gauges.features == {f.feature: f.psi for f in found.features[:4]} and gauges.prediction == found.features[4].psi
    )
    assert (gauges.model, gauges.version) == ("iris", "1")
    only = drift.detect(ref, window(model, scenarios.later_month(0)), features=["sepal_width"], predictions=False)
    assert [f.feature for f in only.features] == ["sepal_width"] and not only.drifted


# ---------------------------------------------------------------- bad input


def test_an_empty_window_names_model_version_and_window():
    empty = Window(model="iris", version="3", start=moment(0), end=moment(3600), rows=[])
    with pytest.raises(EmptyWindowError) as info:
        drift.detect(reference.ReferenceStats.model_construct(), empty)
    assert str(info.value) == (
        "No predictions between 1970-01-01T00:00:00+00:00 and 1970-01-01T01:00:00+00:00 for model iris version 3: "
        "send traffic or widen the window."
    )
    assert isinstance(info.value, InputError)
    for call in (drift.accuracy, lambda w: estimate.compare(w, None)):
        with pytest.raises(EmptyWindowError, match="send traffic or widen the window"):
            call(empty)


def test_unknown_feature_names_are_listed_with_the_known_ones(model, ref):
    w = window(model, scenarios.traffic(1, 20))
    with pytest.raises(InputError) as info:
        drift.detect(ref, w, features=["petal_width", "petal_area", "colour"])
    assert "['petal_area', 'colour']" in str(info.value) and str(F) in str(info.value)
    other = w.model_copy(update={"rows": [r.model_copy(update={"features": {"x0": 1.0}}) for r in w.rows]})
    with pytest.raises(InputError, match=r"Unknown feature name\(s\) \['sepal_length'.*logged traffic.*\['x0'\]"):
        drift.detect(ref, other)


# ---------------------------------------------------------------- accuracy, its estimate, skew


def test_accuracy_counts_only_labelled_rows(model):
    w = window(model, scenarios.traffic(2, 50))
    truth = [r.label for r in w.rows]
    expected = sum(r.prediction == r.label for r in w.rows) / len(w.rows)
    assert drift.accuracy(w).accuracy == pytest.approx(expected) and drift.accuracy(w).labelled == 50
    half = w.model_copy(
        update={"rows": [r.model_copy(update={"label": None}) if i % 2 else r for i, r in enumerate(w.rows)]}
    )
    assert drift.accuracy(half).labelled == 25 and drift.accuracy(half).rows == 50
    unlabelled = window(model, scenarios.traffic(2, 50), labelled=False)
    with pytest.raises(NoLabelsError, match="None of the 50 predictions .* has a label yet"):
        drift.accuracy(unlabelled)
    assert truth == list(scenarios.traffic(2, 50)[data.LABEL])


def test_calibration_maps_confidence_to_the_chance_of_being_right():
    calibration = estimate.calibrate([[0.6, 0.4]] * 10 + [[0.95, 0.05]] * 10, ["a"] * 20, ["a", "b"] * 5 + ["a"] * 10)
    assert calibration.apply([0.6, 0.95]) == pytest.approx([0.5, 1.0])
    assert estimate.estimate([[0.6, 0.4], [0.95, 0.05]], calibration) == pytest.approx(0.75)
    assert estimate.estimate([[0.6, 0.4], [0.95, 0.05]], None) == pytest.approx(0.775)  # raw confidence
    with pytest.raises(InputError, match="at least 10"):
        estimate.calibrate([[0.6, 0.4]] * 3, ["a"] * 3, ["a"] * 3)
    with pytest.raises(InputError, match="same rows"):
        estimate.calibrate([[0.6, 0.4]] * 12, ["a"] * 12, ["a"] * 11)
    with pytest.raises(InputError, match="between 0 and 1"):
        estimate.confidences([[1.5, -0.5]])
    with pytest.raises(InputError, match="shape"):
        estimate.confidences([0.5, 0.5])


def test_estimated_accuracy_is_within_a_few_points_of_the_real_one_without_shift(model, ref):
    rows, raw_gap = [], []
    for seed in range(20):
        w = window(model, scenarios.traffic(200 + seed))
        rows.append(estimate.compare(w, estimate.reference_calibration(ref), name=f"seed {seed}"))
        raw_gap.append(abs(estimate.estimate(estimate.window_probabilities(w), None) - rows[-1].realized))
    gaps = [abs(r.difference) for r in rows if r.difference is not None]
    assert len(gaps) == 20 and max(gaps) <= 0.05 and np.mean(gaps) <= 0.025, gaps
    assert np.mean(raw_gap) > np.mean(gaps)  # the regularised model is under-confident: calibration matters
    table = estimate.AccuracyTable(rows=rows).frame()
    assert list(table.columns) == ["window", "rows", "estimated", "labelled", "realized", "difference"]
    before = estimate.compare(window(model, scenarios.traffic(1), labelled=False), estimate.reference_calibration(ref))
    assert before.realized is None and before.labelled == 0 and 0.85 < before.estimated < 1.0
    assert "(no labels yet)" in estimate.AccuracyTable(rows=[before])._repr_html_()


def test_skew_compares_training_preprocessing_with_the_logged_features(model):
    frame = scenarios.traffic(5, 30)
    w = window(model, frame)
    expected = frame[F].assign(request_id=[f"req-{i}" for i in range(30)])
    same = drift.skew(expected, w)
    assert same.compared == 30 and not same.skewed and same.missing == []
    millimetres = expected.assign(petal_length=expected.petal_length * 10)  # training saw mm, serving cm
    skewed = drift.skew(millimetres, w)
    by_feature = {f.feature: f for f in skewed.features}
    assert skewed.skewed and by_feature["petal_length"].mismatched == 30 and by_feature["sepal_width"].mismatched == 0
    assert by_feature["petal_length"].max_abs_diff == pytest.approx((frame.petal_length * 9).max())
    extra = expected.iloc[:3].assign(request_id=["gone-1", "gone-2", "req-0"])
    assert drift.skew(extra, w).missing == ["gone-1", "gone-2"] and drift.skew(extra, w).compared == 1
    with pytest.raises(InputError, match="None of the 2 expected request ids"):
        drift.skew(extra.iloc[:2], w)
    with pytest.raises(InputError, match=r"\['petal_area'\]"):
        drift.skew(expected.assign(petal_area=1.0), w)


# ---------------------------------------------------------------- the HTML report


def test_the_report_names_every_feature_and_verdict_and_loads_nothing(tmp_path, model, ref):
    w = window(model, scenarios.later_month(7), start=1_700_000_000)
    found = drift.detect(ref, w)
    calibration = estimate.reference_calibration(ref)
    accuracy = estimate.AccuracyTable(rows=[estimate.compare(w, calibration, name="later month")])
    path = report.write(Workbench.from_env(tmp_path), found, ref, w, accuracy)
    assert path.parent == tmp_path / "monitoring" / "reports" and path.name == "drift-iris-v1-20231114T221640.html"
    page = path.read_text()
    for f in found.features:
        assert f"<td>{f.feature}</td>" in page and f"{f.feature}: {'drift' if f.drifted else 'no drift'}" in page
    assert "Drift of iris version 1: DRIFT" in page and "Drifted: <strong>petal_length" in page
    assert "later month" in page and page.count("data:image/png;base64,") == len(found.features)
    assert not re.search(r"<script|<link|https?://|src=\"(?!data:)", page)  # nothing from anywhere
    quiet = drift.detect(ref, window(model, scenarios.traffic(7)))
    assert "no drift</h1>" in report.render(quiet, ref, window(model, scenarios.traffic(7)))
    with pytest.raises(InputError, match="no file name"):
        report.write(Workbench.from_env(tmp_path), found, ref, w, name="///")
