"""The kind scale path: the rollout policy as Argo Rollouts + Gateway API manifests.

``render`` turns a :mod:`mlops_workbench.rollout.policy` into the Rollout's canary
strategy and AnalysisTemplates; ``validate`` proves manifests offline (schemas and
cross-references); ``cluster`` drives kind, kubectl, helm and kubectl-argo-rollouts;
``analysis_app`` is the ``web`` metric provider that reuses :mod:`rollout.analysis`.
Their command-line tools run through :mod:`mlops_workbench.tools`, importable from
here as ``tools`` (lab 05's notebook does).
"""

from mlops_workbench import tools  # noqa: F401
