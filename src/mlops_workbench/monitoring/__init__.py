"""Production monitoring: what the model servers predicted, how far live inputs drift from the training
reference, the alerts that fire on it, and the retraining they start (lab 07)."""
