"""NumPy neural-network engine: layers with forward and backward, losses, optimizers and
schedules, models built from a declarative spec, and the trainer."""

from .layers import Layer, Dense, ReLU, Flatten, SwapAxes, Dropout
from .conv import Conv1d, Conv2d
from .pool import MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d, GlobalAvgPool
from .lstm import LSTM
from .gru import GRU
from .batchnorm import BatchNorm, fold_batchnorm
from .affine import ChannelAffine, fold_channel_affine, insert_channel_affine
from .loss import softmax_cross_entropy
from .optim import SGD, Adam, make_optimizer
from .schedule import lr_factor
from .model import (Sequential, build_model, mlp_spec, cnn_spec, deep_cnn_spec, lstm_spec,
                    LAYER_TYPES)
from .train import TrainConfig, train, evaluate, predict
from .augment import random_shift

__all__ = [
    "Layer", "Dense", "ReLU", "Flatten", "SwapAxes", "Dropout", "Conv1d", "Conv2d", "MaxPool1d",
    "MaxPool2d", "AvgPool1d", "AvgPool2d", "GlobalAvgPool", "LSTM", "GRU", "BatchNorm",
    "fold_batchnorm", "ChannelAffine", "fold_channel_affine", "insert_channel_affine",
    "softmax_cross_entropy", "SGD", "Adam", "make_optimizer", "lr_factor",
    "Sequential", "build_model", "mlp_spec", "cnn_spec", "deep_cnn_spec", "lstm_spec",
    "LAYER_TYPES", "TrainConfig", "train", "evaluate", "predict", "random_shift",
]
