"""Models as a sequence of layers, built from a declarative spec (a list of plain dicts), so that
an artifact can store the architecture as JSON and rebuild the model."""

import numpy as np

from .layers import Dense, Flatten, ReLU

__all__ = ["Sequential", "build_model", "mlp_spec", "LAYER_TYPES"]

LAYER_TYPES = {"dense": Dense, "relu": ReLU, "flatten": Flatten}


class Sequential:
    """Layers applied in order; backward in reverse order."""

    def __init__(self, layers):
        self.layers = list(layers)

    def forward(self, x, train=False):
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    __call__ = forward

    def backward(self, dLdy):
        for layer in reversed(self.layers):
            dLdy = layer.backward(dLdy)
        return dLdy

    def named_parameters(self):
        """``((layer_index, name), param, grad)`` for every parameter array."""
        for i, layer in enumerate(self.layers):
            for name, p in layer.params.items():
                yield (i, name), p, layer.grads[name]

    def spec(self):
        return [layer.spec() for layer in self.layers]

    def state(self):
        """``{"<index>.<name>": array}``: a copy of every parameter."""
        return {f"{i}.{name}": p.copy() for (i, name), p, _ in self.named_parameters()}

    def load_state(self, state):
        for (i, name), p, _ in self.named_parameters():
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
