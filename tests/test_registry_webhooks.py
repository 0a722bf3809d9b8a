"""MLflow's registry webhooks in the audit log: the signature and the ours-or-theirs decision (pure), then a real
``mlflow server`` (sqlite) delivering alias events to the monitor service's receiver."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from mlops_workbench.registry import webhooks
from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome
from mlops_workbench.registry.webhooks import AliasEvent, Refused

KEY = "s3cret"
BODY = json.dumps(
    {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2026-12-05T04:00:00+00:00",
        "data": {"name": "iris", "alias": "production", "version": "3"},
    }
)


def headers(body: str = BODY, key: str = KEY, stamp: int = 1_000_000, delivery: str = "d-1") -> dict[str, str]:
    return {
        webhooks.DELIVERY_HEADER: delivery,
        webhooks.TIMESTAMP_HEADER: str(stamp),
        webhooks.SIGNATURE_HEADER: webhooks.signature(key, delivery, str(stamp), body),
    }


def test_the_signature_is_mlflows_own():
    from mlflow.webhooks.delivery import _generate_hmac_signature

    assert webhooks.signature(KEY, "d-1", "1000", BODY) == _generate_hmac_signature(KEY, "d-1", "1000", BODY)


def test_verify_accepts_a_fresh_signed_delivery_and_refuses_the_rest():
    assert webhooks.verify(KEY, headers(), BODY.encode(), 1_000_010) == "d-1"
    rotated = {**headers(), webhooks.SIGNATURE_HEADER: "v1,b2xk " + headers()[webhooks.SIGNATURE_HEADER]}
    assert webhooks.verify(KEY, rotated, BODY.encode(), 1_000_010) == "d-1", "any one of several signatures"
    cases = [
        ({**headers(), webhooks.SIGNATURE_HEADER: ""}, BODY, 1_000_000, "unsigned delivery"),
        (headers(key="another"), BODY, 1_000_000, "bad signature"),
        (headers(), BODY.replace('"3"', '"4"'), 1_000_000, "bad signature"),
        (headers(), BODY, 1_000_000 + 301, "stale delivery"),
        ({**headers(), webhooks.TIMESTAMP_HEADER: "soon"}, BODY, 1_000_000, "Unix seconds"),
    ]
    for given, body, now, words in cases:
        with pytest.raises(Refused, match=words) as refused:
            webhooks.verify(KEY, given, body.encode(), now)
        assert 400 <= refused.value.status < 500


def alias_event(action: str, alias: str, version: str | None, at: datetime) -> AliasEvent:
    data = {"name": "iris", "alias": alias} | ({"version": version} if version else {})
    return AliasEvent.model_validate({"entity": "model_version_alias", "action": action, "timestamp": at, "data": data})


def test_the_workbench_own_promotions_and_rollbacks_explain_their_alias_events():
    now = datetime.now(UTC)
    promoted = AuditEntry(
        ts=now.isoformat(),
        action=AuditAction.PROMOTE,
        model="iris",
        version="3",
        alias="production",
        outcome=AuditOutcome.PROMOTED,
        replaced="2",
    )
    rolled = AuditEntry(
        ts=now.isoformat(),
        action=AuditAction.ROLLBACK,
        model="iris",
        version="2",
        alias="production",
        outcome=AuditOutcome.ROLLED_BACK,
        replaced="3",
    )
    for entry, events in [
        (promoted, [("created", "production", "3"), ("created", "previous", "2"), ("deleted", "staging", None)]),
        (rolled, [("created", "production", "2"), ("deleted", "previous", None)]),
    ]:
        for action, alias, version in events:
            assert webhooks.explains([entry], alias_event(action, alias, version, now)) == entry
    assert webhooks.explains([promoted], alias_event("created", "production", "4", now)) is None
    assert webhooks.explains([promoted], alias_event("created", "production", "3", now + timedelta(minutes=5))) is None
    refused = promoted.model_copy(update={"outcome": AuditOutcome.REFUSED})
    assert webhooks.explains([refused], alias_event("created", "production", "3", now)) is None
    line = webhooks.out_of_band(alias_event("deleted", "production", None, now), "d-9")
    assert (line.action, line.outcome, line.alias, line.delivery) == (
        AuditAction.ALIAS_DELETED,
        AuditOutcome.OUT_OF_BAND,
        "production",
        "d-9",
    )


# --- end to end: a real tracking server delivering to the real receiver ------------------------------------------------
MODEL = "iris-hooks"


def out_of_band(wb) -> list[AuditEntry]:
    from mlops_workbench.registry import audit

    return [e for e in audit.read(wb) if e.outcome is AuditOutcome.OUT_OF_BAND]


def wait_for(wb, count: int, timeout: float = 90.0) -> list[AuditEntry]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = out_of_band(wb)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{count} out-of-band line(s) expected within {timeout:.0f} s, found {out_of_band(wb)}")


@pytest.mark.slow
def test_mlflow_delivers_alias_changes_and_only_those_made_outside_the_workbench_are_recorded(wb):
    import httpx
    from mlflow import MlflowClient

    from mlops_workbench import registry, tracking
    from mlops_workbench.monitoring import registry_watch
    from mlops_workbench.rollout import prepare

    versions = prepare.ensure_versions(wb, model_name=MODEL, roles=("stable", "candidate"))
    url = registry_watch.watch(wb)
    assert registry_watch.watch(wb) == url, "registering again updates the one webhook"
    assert [h.name for h in tracking.client(wb).list_webhooks()] == [webhooks.NAME]
    assert out_of_band(wb) == [], "MLflow's test delivery is not a change"

    bare = MlflowClient(tracking_uri=tracking.url(wb))  # someone outside the workbench
    bare.set_registered_model_alias(MODEL, "canary", versions.candidate)
    (line,) = wait_for(wb, 1)
    assert (line.action, line.model, line.alias, line.version) == (
        AuditAction.ALIAS_CREATED,
        MODEL,
        "canary",
        versions.candidate,
    )

    registry.promote(wb, MODEL, versions.candidate, "staging", approver="lead", reason="ours, audited")
    bare.delete_registered_model_alias(MODEL, "canary")
    found = wait_for(wb, 2)
    assert [(e.action, e.alias) for e in found] == [
        (AuditAction.ALIAS_CREATED, "canary"),
        (AuditAction.ALIAS_DELETED, "canary"),
    ], "the workbench's own promotion to staging is not out of band"

    body = json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {"name": MODEL, "alias": "production", "version": versions.candidate},
        }
    )
    now = int(time.time())
    forged = headers(body, key="not-the-secret", stamp=now)
    stale = headers(body, key=webhooks.secret(wb), stamp=now - 3600)
    for given in (forged, stale, {"content-type": "application/json"}):
        answer = httpx.post(url, content=body, headers=given, timeout=10)
        assert answer.status_code == 401, answer.text
    good = headers(body, key=webhooks.secret(wb), stamp=now, delivery="replayed")
    assert httpx.post(url, content=body, headers=good, timeout=10).json()["recorded"] is True
    assert httpx.post(url, content=body, headers=good, timeout=10).json()["recorded"] is False, "a redelivery"
    assert len(out_of_band(wb)) == 3
