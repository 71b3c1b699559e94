"""Fuzz cases for the compiler: small seeded network descriptions that, over consecutive
seeds, use every layer kind the shared-array engine takes, with random integer models and
inputs (:mod:`slimgen.sw.random_network`).

Case ``seed`` cycles through five families (``seed % 5``): an image with convolutions and a
flatten, a sequence with convolutions and a flatten, an image ending in a global average
pool, a sequence ending in a global average pool, a vector of dense layers. Every
convolution draws a kernel of 1 to 7 (what the padded input holds), stride 1 or 2 (a
sequence's stride 1 three times in four, so that the compiler's cost model puts many of them
on Winograd/CRT algorithms), padding
``same`` (asymmetric for even kernels and stride 2), ``valid`` or a number, a bias or none,
a batchnorm and ReLU or not; a max or average pool of size 2 or 3 and any stride follows
half of them. Dense layers of 2 to 12 units close every network. Widths (2 to 8 bits),
sparsity (density 0.2 to 1 per layer) and per-layer or per-channel multipliers come from
:func:`slimgen.sw.random_network.random_int_network`.

The recurrent engine's cases (:func:`recurrent_case`, seeds of their own): an LSTM (even seeds)
or a GRU (odd) of 1 to 10 hidden units over 2 to 6 steps of 1 to 6 features, its last state
(a dropout or not) into a dense head of 2 to 12 units; the cell's fixed-point format random
half of the time (:func:`slimgen.sw.random_network.random_recurrent_format`), on 1 to 4 lanes
(the flow builds such a network on the recurrent engine, :func:`slimgen.models.net.make_network`;
the bench builds that engine itself, to choose its element-wise multipliers).
"""

from dataclasses import dataclass

import numpy as np

from slimgen.sw.network import NetworkError, check_network, padding_amounts
from slimgen.sw.random_network import random_inputs, random_int_network, random_recurrent_format

__all__ = ["FuzzCase", "fuzz_case", "fuzz_description", "recurrent_case", "FAMILIES"]

FAMILIES = ("image", "sequence", "image-global", "sequence-global", "vector")


@dataclass(frozen=True, eq=False)
class FuzzCase:
    """One case: ``int_net`` (IntNetwork), input codes ``x`` (n, n_inputs), ``lanes``."""
    seed: int
    family: str
    int_net: object
    x: np.ndarray
    lanes: int


def _conv(rng, kind, size):
    """A convolution whose kernel fits the ``size`` of the smallest spatial axis once
    padded."""
    padding = str(rng.choice(["same", "valid", "number"]))
    k = int(rng.integers(1, 8))
    if padding == "valid":
        k = min(k, size)
    elif padding == "number":
        padding = int(rng.integers(max(0, -(-(k - size) // 2)), k))
    channels = int(rng.integers(1, 6))
    # sequences: stride 1 three times in four, so that Winograd/CRT algorithms get chosen
    stride = int(rng.integers(1, 3)) if kind == "conv2d" else 1 + int(rng.random() < 0.25)
    return {"type": kind, "channels": channels, "kernel": k, "stride": stride,
            "padding": padding, "bias": bool(rng.random() < 0.7)}


def fuzz_description(rng, family):
    """A random description of ``family`` (one of :data:`FAMILIES`) as a dict."""
    bits = int(rng.integers(2, 9))
    base = family.split("-")[0]
    if base == "vector":
        layers = [{"type": "input", "shape": [int(rng.integers(4, 25))], "bits": bits}]
    else:
        spatial = [int(rng.integers(5, 10))] * (2 if base == "image" else 1)
        if base == "sequence":
            spatial = [int(rng.integers(6, 25))]
        layers = [{"type": "input", "shape": [*spatial, int(rng.integers(1, 4))], "bits": bits}]
        kind = "conv2d" if base == "image" else "conv1d"
        size = min(spatial)
        for _ in range(int(rng.integers(1, 4))):
            conv = _conv(rng, kind, size)
            before, after = padding_amounts(size, conv["kernel"], conv["stride"],
                                            conv["padding"])
            size = (size + before + after - conv["kernel"]) // conv["stride"] + 1
            layers.append(conv)
            if rng.random() < 0.3:
                layers.append({"type": "batchnorm"})
            if rng.random() < 0.7:
                layers.append({"type": "relu"})
            if size >= 2 and rng.random() < 0.5:
                pool = int(rng.integers(2, min(3, size) + 1))
                stride = int(rng.integers(1, pool + 1))
                layers.append({"type": str(rng.choice(["maxpool", "avgpool"])), "size": pool,
                               "stride": stride})
                size = (size - pool) // stride + 1
        layers.append({"type": "global_avgpool" if family.endswith("global") else "flatten"})
    for _ in range(int(rng.integers(0, 3))):
        layers += [{"type": "dense", "units": int(rng.integers(2, 13))}, {"type": "relu"}]
    layers.append({"type": "dense", "units": int(rng.integers(2, 11))})
    if rng.random() < 0.15:
        layers.append({"type": "relu"})                       # a ReLU on the logits
    return {"name": f"fuzz-{family}", "layers": layers}


def fuzz_case(seed, *, n=8):
    """Case ``seed``: its description (family ``seed % 5``; drawn again until valid), a random
    integer model, ``n`` input codes (the all-zero and all-max samples first) and 1 to 6
    lanes. Same seed, same case."""
    rng = np.random.default_rng([16, seed])
    family = FAMILIES[seed % len(FAMILIES)]
    while True:
        try:
            net = check_network(fuzz_description(rng, family))
            break
        except NetworkError:
            continue
    int_net = random_int_network(rng, net, density=None)
    return FuzzCase(seed, family, int_net, random_inputs(rng, int_net, n),
                    int(rng.integers(1, 7)))


def recurrent_case(seed, *, n=6):
    """Recurrent case ``seed`` (module docstring): a :class:`FuzzCase` of family ``lstm`` or
    ``gru``, ``n`` input sequences (the all-zero and all-max first). Same seed, same case."""
    rng = np.random.default_rng([17, seed])
    cell = ("lstm", "gru")[seed % 2]
    hidden = int(rng.integers(1, 11))
    while True:
        desc = [{"type": "input", "shape": [int(rng.integers(2, 7)), int(rng.integers(1, 7))],
                 "bits": int(rng.integers(2, 9))},
                {"type": cell, "hidden": hidden, **random_recurrent_format(rng)}]
        if rng.random() < 0.3:
            desc.append({"type": "dropout", "rate": 0.1})
        desc.append({"type": "dense", "units": int(rng.integers(2, 13))})
        try:
            net = check_network(desc, name=f"{cell}{seed}")
            break
        except NetworkError:
            continue
    int_net = random_int_network(rng, net, density=None)
    return FuzzCase(seed, cell, int_net, random_inputs(rng, int_net, n),
                    int(rng.integers(1, min(4, hidden) + 1)))
