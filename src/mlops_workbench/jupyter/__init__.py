"""JupyterLab integration: how ``make lab`` starts JupyterLab, and the MLflow launcher tile."""
