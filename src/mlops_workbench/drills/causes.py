"""The fixed lists a drill's metadata and a post-mortem draw from: root causes and the changes that repair them.

Each member carries the words that give it away (:data:`CAUSE_TERMS`, :data:`CHANGE_TERMS`): a brief or a title
that contains one of its drill's words names the cause or the fix, which a symptom-only brief never does. Some
causes only name what was seen (:data:`SYMPTOMS`): a post-mortem that stops there earns part of the marks.
"""

from __future__ import annotations

from enum import StrEnum


class RootCause(StrEnum):
    """Why an incident happened (the post-mortem's ``root_cause``)."""

    MODEL_QUALITY = "model-quality"
    """A model that answers wrongly was released."""
    MODEL_INTERFACE = "model-interface"
    """A model whose inputs no longer fit what the clients send was released."""
    UPSTREAM_DATA = "upstream-data-change"
    """A data source changed its format; the checks that guard it rejected the change."""
    UNVERSIONED_DATA = "unversioned-data"
    """Data changed outside version control before a model was trained on it."""
    PIPELINE_NOT_RERUN = "pipeline-not-rerun"
    """Inputs were committed without rerunning the pipeline, so the recorded outputs belong to older inputs."""
    CONTROLLER_DOWN = "controller-down"
    """The process driving a rollout stopped and nothing restarted it."""
    METRICS_SOURCE_DOWN = "metrics-source-down"
    """The metrics backend a rollout reads stopped."""
    ANALYSIS_CONFIG = "analysis-config"
    """A rollout's analysis was configured to need data it can never get."""
    RELEASE_PROCESS_BYPASSED = "release-process-bypassed"
    """A version reached users without the release process (gate, staging, a second person's approval)."""
    WRONG_ANSWERS = "wrong-answers"
    """Symptom only: users got wrong answers."""
    REQUEST_ERRORS = "request-errors"
    """Symptom only: requests failed."""
    ROLLOUT_STUCK = "rollout-stuck"
    """Symptom only: a rollout did not finish."""
    CI_FAILURE = "ci-failure"
    """Symptom only: CI was red."""
    NOT_REPRODUCIBLE = "not-reproducible"
    """Symptom only: a run could not be reproduced."""


SYMPTOMS = frozenset(
    {
        RootCause.WRONG_ANSWERS,
        RootCause.REQUEST_ERRORS,
        RootCause.ROLLOUT_STUCK,
        RootCause.CI_FAILURE,
        RootCause.NOT_REPRODUCIBLE,
    }
)


class Change(StrEnum):
    """What the on-call engineer changed (the post-mortem's ``changes``), each visible in a log or in the state."""

    ROLLED_BACK = "rolled-back"
    SERVER_RELOADED = "server-reloaded"
    CI_TEST_ADDED = "ci-test-added"
    DATA_CONVERTED = "data-converted"
    DATA_RESTORED = "data-restored"
    PIPELINE_RERUN = "pipeline-rerun"
    ROLLOUT_ABORTED = "rollout-aborted"
    ROLLOUT_RESUMED = "rollout-resumed"
    POLICY_CORRECTED = "policy-corrected"
    METRICS_RESTARTED = "metrics-restarted"
    ROLLOUT_REPEATED = "rollout-repeated"
    PROMOTED_PROPERLY = "promoted-properly"


CAUSE_TERMS: dict[RootCause, tuple[str, ...]] = {
    RootCause.MODEL_QUALITY: ("skew", "mislabel", "regression", "quality gate", "loosened"),
    RootCause.MODEL_INTERFACE: ("signature", "feature", "column", "interface"),
    RootCause.UPSTREAM_DATA: ("unit", "millimet", "inch", "rename", "column", "schema", "label"),
    RootCause.UNVERSIONED_DATA: ("in place", "outside dvc", "dvc add", "unversioned", "edited", "modified"),
    RootCause.PIPELINE_NOT_RERUN: ("dvc.lock", "lock file", "dvc repro", "stale", "pipeline", "rerun"),
    RootCause.CONTROLLER_DOWN: ("controller", "died", "killed", "crash", "unattended"),
    RootCause.METRICS_SOURCE_DOWN: ("prometheus", "metrics source", "scrape", "metrics backend"),
    RootCause.ANALYSIS_CONFIG: ("sample size", "minsamplesize", "window", "analysis config", "misconfigured"),
    RootCause.RELEASE_PROCESS_BYPASSED: ("approval", "approve", "bypass", "by hand", "skipped"),
    RootCause.WRONG_ANSWERS: (),
    RootCause.REQUEST_ERRORS: (),
    RootCause.ROLLOUT_STUCK: (),
    RootCause.CI_FAILURE: (),
    RootCause.NOT_REPRODUCIBLE: (),
}
"""Words that name each cause (lower case; a brief must contain none of its drill's)."""

CHANGE_TERMS: dict[Change, tuple[str, ...]] = {
    Change.ROLLED_BACK: ("roll back", "rollback", "roll production back", "revert", "previous version"),
    Change.SERVER_RELOADED: ("reload",),
    Change.CI_TEST_ADDED: ("signature",),
    Change.DATA_CONVERTED: ("convert", "divide", "multiply", "rename"),
    Change.DATA_RESTORED: ("dvc checkout", "restore the data", "versioned bytes"),
    Change.PIPELINE_RERUN: ("dvc repro", "dvc.lock", "rerun the pipeline"),
    Change.ROLLOUT_ABORTED: ("abort",),
    Change.ROLLOUT_RESUMED: ("resume",),
    Change.POLICY_CORRECTED: ("minsamplesize", "sample size", "window", "fix the policy"),
    Change.METRICS_RESTARTED: ("prometheus", "restart the metrics"),
    Change.ROLLOUT_REPEATED: ("retry-policy", "roll it out again", "rollout start"),
    Change.PROMOTED_PROPERLY: ("approval", "approve", "second person"),
}
"""Words that name each change (lower case; a brief must contain none of its drill's fixes)."""


def giveaways(cause: RootCause, fixes: list[Change]) -> list[str]:
    """Every word a drill's brief and title must not contain: those of its root cause and of its fixes."""
    return [*CAUSE_TERMS[cause], *(term for fix in fixes for term in CHANGE_TERMS[fix])]


def named(text: str, terms: list[str]) -> list[str]:
    """The ``terms`` that occur in ``text`` (case-insensitive)."""
    lowered = text.lower()
    return [term for term in terms if term in lowered]
