"""NumPy neural-network engine: layers with forward and backward, losses, optimizers, models
built from a declarative spec, and the trainer."""

from .layers import Layer, Dense, ReLU, Flatten
from .loss import softmax_cross_entropy
from .optim import Adam
from .model import Sequential, build_model, mlp_spec
from .train import TrainConfig, train, evaluate, predict

__all__ = [
    "Layer", "Dense", "ReLU", "Flatten", "softmax_cross_entropy", "Adam",
    "Sequential", "build_model", "mlp_spec", "TrainConfig", "train", "evaluate", "predict",
]
