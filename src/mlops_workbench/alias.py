"""The names of the model registry's aliases, in one place.

A model version serves through an alias (``models:/iris@production``), never through MLflow's deprecated stages.
The workbench moves four: a version is approved into ``staging``, may serve as ``canary``, then ``production``;
the version production had before keeps ``previous``, so a rollback knows where to go. :class:`Alias` is a
``str`` enum: its members are equal to (and hash like) the plain strings, so MLflow, JSON and the audit log see
the same words as before, and learners keep writing ``"production"`` in their notebooks. This module imports
nothing heavy: the CLI reads it in every process.
"""

from __future__ import annotations

from enum import StrEnum


class Alias(StrEnum):
    """A registry alias the workbench sets."""

    STAGING = "staging"
    CANARY = "canary"
    PRODUCTION = "production"
    PREVIOUS = "previous"


PROMOTABLE: tuple[Alias, ...] = (Alias.STAGING, Alias.CANARY, Alias.PRODUCTION)
"""The aliases a promotion may point at a version; ``previous`` only moves as a side effect of one."""
