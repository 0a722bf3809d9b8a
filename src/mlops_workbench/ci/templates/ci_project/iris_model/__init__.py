"""An Iris classifier: load the data, train, save and load the model, predict."""

from iris_model.model import CLASSES, FEATURES, accuracy, load_data, load_model, predict, save_model, split, train_model

__all__ = [
    "CLASSES",
    "FEATURES",
    "accuracy",
    "load_data",
    "load_model",
    "predict",
    "save_model",
    "split",
    "train_model",
]
