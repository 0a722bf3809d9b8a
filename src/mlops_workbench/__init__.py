"""mlops-workbench: hands-on CI/CD for machine-learning artifacts.

One flat module per lifecycle stage (data, train, evaluate, tracking, registry,
serve, rollout, labs, drills); notebooks and the ``workbench`` CLI import from
here, never the reverse.
"""

__version__ = "0.1.0"
