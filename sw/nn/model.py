"""Models as a sequence of layers, built from a declarative spec (a list of plain dicts), so that
an artifact can store the architecture as JSON and rebuild the model.

Spec helpers for the digits models: :func:`mlp_spec` (vectors), :func:`cnn_spec` and
:func:`deep_cnn_spec` (8×8 images), :func:`lstm_spec` (8 rows as 8 steps).
"""

import numpy as np

from .batchnorm import BatchNorm
from .conv import Conv1d, Conv2d, conv_output_size
from .gru import GRU
from .layers import Dense, Dropout, Flatten, ReLU, SwapAxes, check_positive_int
from .lstm import LSTM
from .pool import AvgPool1d, AvgPool2d, GlobalAvgPool, MaxPool1d, MaxPool2d

__all__ = ["Sequential", "build_model", "mlp_spec", "cnn_spec", "deep_cnn_spec", "lstm_spec",
           "LAYER_TYPES"]

LAYER_TYPES = {"dense": Dense, "relu": ReLU, "flatten": Flatten, "conv2d": Conv2d,
               "maxpool2d": MaxPool2d, "avgpool2d": AvgPool2d, "lstm": LSTM,
               "batchnorm": BatchNorm, "conv1d": Conv1d, "maxpool1d": MaxPool1d,
               "avgpool1d": AvgPool1d, "global_avgpool": GlobalAvgPool, "dropout": Dropout,
               "gru": GRU, "swap_axes": SwapAxes}


class Sequential:
    """Layers applied in order; backward in reverse order.

    Hooks (``add_hook``) see every layer's output: ``hook.after_forward(i, y, train)`` after
    layer i's forward, and ``dLdy = hook.before_backward(i, dLdy)`` before its backward, so a
    training option such as method 1 can add loss terms on activations without a layer of its
    own.
    """

    def __init__(self, layers):
        self.layers = list(layers)
        self.hooks = []

    def forward(self, x, train=False):
        hooks = self.hooks
        for i, layer in enumerate(self.layers):
            x = layer.forward(x, train)
            for h in hooks:
                h.after_forward(i, x, train)
        return x

    __call__ = forward

    def backward(self, dLdy, *, input_grad=True):
        """Fill every layer's ``grads`` from ``dLdy`` at the output; return ``dLdx`` at the input,
        or None with ``input_grad=False``, which spares the first layer that product (training
        needs only the parameters' gradients)."""
        hooks = self.hooks
        for i in reversed(range(len(self.layers))):
            for h in hooks:
                dLdy = h.before_backward(i, dLdy)
            if i == 0 and not input_grad:
                self.layers[0].backward_params(dLdy)
                return None
            dLdy = self.layers[i].backward(dLdy)
        return dLdy

    def add_hook(self, hook):
        self.hooks.append(hook)

    def remove_hook(self, hook):
        self.hooks.remove(hook)

    def named_parameters(self):
        """``((layer_index, name), param, grad)`` for every parameter array."""
        for i, layer in enumerate(self.layers):
            for name, p in layer.params.items():
                yield (i, name), p, layer.grads[name]

    def named_buffers(self):
        """``((layer_index, name), buffer)`` for every non-trained state array."""
        for i, layer in enumerate(self.layers):
            for name, b in getattr(layer, "buffers", {}).items():
                yield (i, name), b

    def spec(self):
        return [layer.spec() for layer in self.layers]

    def state(self):
        """``{"<index>.<name>": array}``: a copy of every parameter (and buffer)."""
        state = {f"{i}.{name}": p.copy() for (i, name), p, _ in self.named_parameters()}
        state.update({f"{i}.{name}": b.copy() for (i, name), b in self.named_buffers()})
        return state

    def load_state(self, state):
        arrays = [(key, p) for key, p, _ in self.named_parameters()] + list(self.named_buffers())
        for (i, name), p in arrays:
            key = f"{i}.{name}"
            if key not in state or state[key].shape != p.shape:
                raise ValueError(f"State is missing {key} of shape {p.shape}")
            p[...] = state[key]


def mlp_spec(sizes=(64, 32, 10)):
    """Dense layers of the given sizes with ReLU between them (none after the last)."""
    sizes = tuple(sizes)
    if len(sizes) < 2 or any(not isinstance(s, int) or s <= 0 for s in sizes):
        raise ValueError(f"MLP sizes must be two or more positive integers, not {sizes}")
    spec = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        spec.append({"type": "dense", "n_in": a, "n_out": b})
        if i < len(sizes) - 2:
            spec.append({"type": "relu"})
    return spec


def _check_image(in_shape):
    if len(in_shape) != 3 or any(not isinstance(s, int) or s <= 0 for s in in_shape):
        raise ValueError(f"Image shape must be three positive integers (c, h, w), not {in_shape}")
    return in_shape


def cnn_spec(in_shape=(1, 8, 8), channels=(8, 16), n_classes=10, *, kernel=3, pool=2,
             batchnorm=False):
    """Convolutions (``kernel``×``kernel``, stride 1, 'same' padding, each followed by ReLU),
    then one ``pool``×``pool`` max pooling, then a dense classifier.

    The default is the small digits CNN: conv3x3 8 → conv3x3 16 → maxpool 2 → dense 10
    (1×8×8 → 8×8×8 → 16×8×8 → 16×4×4 → 10). ``batchnorm`` puts a BatchNorm after each convolution.
    """
    c, h, w = _check_image(tuple(in_shape))
    if not channels or any(not isinstance(k, int) or k <= 0 for k in channels):
        raise ValueError(f"CNN channels must be one or more positive integers, not {channels}")
    check_positive_int("CNN n_classes", n_classes)
    check_positive_int("CNN pool", pool)
    if kernel % 2 != 1:
        raise ValueError(f"CNN kernel must be odd (for 'same' padding), not {kernel!r}")
    spec = []
    for k in channels:
        spec.append({"type": "conv2d", "c_in": c, "c_out": k, "kernel": kernel, "stride": 1,
                     "padding": kernel // 2})
        if batchnorm:
            spec.append({"type": "batchnorm", "n_channels": k, "momentum": 0.9, "eps": 1e-5})
        spec.append({"type": "relu"})
        c = k
    if pool > 1:
        spec.append({"type": "maxpool2d", "kernel": pool})
        h, w = h // pool, w // pool
    spec += [{"type": "flatten"}, {"type": "dense", "n_in": c * h * w, "n_out": n_classes}]
    return spec


def deep_cnn_spec(in_shape=(1, 8, 8), depth=8, width=16, n_classes=10, *, batchnorm=False):
    """A deep plain CNN (no residual connections): ``depth`` conv3x3 layers of ``width``
    channels with ReLU, a 2×2 max pooling after the first half, global average pooling and a
    dense classifier. The model on which normalization matters (bench/normalization.py)."""
    c, h, w = _check_image(tuple(in_shape))
    check_positive_int("deep CNN depth", depth)
    check_positive_int("deep CNN width", width)
    spec = []
    for d in range(depth):
        spec.append({"type": "conv2d", "c_in": c, "c_out": width, "kernel": 3, "stride": 1,
                     "padding": 1})
        if batchnorm:
            spec.append({"type": "batchnorm", "n_channels": width, "momentum": 0.9,
                         "eps": 1e-5})
        spec.append({"type": "relu"})
        c = width
        if d == depth // 2 - 1 and min(h, w) >= 4:
            spec.append({"type": "maxpool2d", "kernel": 2})
            h, w = conv_output_size(h, 2, 2, 0), conv_output_size(w, 2, 2, 0)
    spec += [{"type": "avgpool2d", "kernel": min(h, w)}, {"type": "flatten"},
             {"type": "dense", "n_in": c * (h // min(h, w)) * (w // min(h, w)), "n_out": n_classes}]
    return spec


def lstm_spec(n_in=8, n_hidden=32, n_classes=10):
    """An LSTM over the sequence whose last hidden state feeds a dense classifier
    (digits: 8 rows of 8 pixels as 8 steps)."""
    check_positive_int("LSTM n_in", n_in)
    check_positive_int("LSTM n_hidden", n_hidden)
    check_positive_int("LSTM n_classes", n_classes)
    return [{"type": "lstm", "n_in": n_in, "n_hidden": n_hidden, "return_sequences": False},
            {"type": "dense", "n_in": n_hidden, "n_out": n_classes}]


def build_model(spec, rng=None):
    """A :class:`Sequential` from a spec; ``rng`` (``np.random.Generator``) initialises weights."""
    rng = np.random.default_rng(0) if rng is None else rng
    layers = []
    for i, entry in enumerate(spec):
        entry = dict(entry)
        kind = entry.pop("type", None)
        if kind not in LAYER_TYPES:
            raise ValueError(f"Layer {i}: type must be one of {', '.join(LAYER_TYPES)}, "
                             f"not {kind!r}")
        cls = LAYER_TYPES[kind]
        try:
            layers.append(cls(**entry, rng=rng) if cls.params_from_rng else cls(**entry))
        except TypeError as e:
            raise ValueError(f"Layer {i} ({kind}): {e}") from None
    return Sequential(layers)
