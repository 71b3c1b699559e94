"""A network of the user's own (``--net net.json``, :mod:`slimgen.sw.network`): trained,
compressed, quantized and checked against the golden model like the presets.

Its hardware is the compiler of the next step (any description on one shared multiplier
array); until then the generate stage refuses it with a message that says so, and
``slimgen flow --net net.json --to quantize`` runs everything before.
"""

import math

from slimgen.sw.network import NetworkError, load_network, to_float_input

__all__ = ["VIEW", "check_config", "check_data", "network", "float_input", "make_network"]

VIEW = "vector"


def network(config, act_bits=None, pixel_max=None):
    """The description in the file ``config.net`` (its own input width)."""
    return load_network(config.net)


def check_config(config):
    """The description file must be readable and a valid description."""
    from slimgen.settings import SettingError
    if not isinstance(config.net, str) or not config.net:
        raise SettingError("net", f"must be the path of a network description (.json), not "
                                  f"{config.net!r}")
    try:
        net = load_network(config.net)
    except NetworkError as e:
        raise SettingError("net", f"{config.net!r} cannot be used: {e}") from None
    if config.method == "lstm_gates" and not any(layer["type"] in ("lstm", "gru")
                                                 for layer in net.layers):
        raise SettingError("method", f"'lstm_gates' prunes LSTM and GRU gates; the network "
                                     f"{net.name} ({config.net}) has no lstm or gru layer")


def check_data(config, shape, n_classes):
    """Refuse samples of another size than the description's input and labels beyond its
    outputs."""
    net = load_network(config.net)
    if math.prod(shape) != net.n_inputs:
        raise ValueError(f"samples have {math.prod(shape)} values, but the network "
                         f"{net.name} takes inputs of shape {list(net.input_shape)} "
                         f"({net.n_inputs} values)")
    if n_classes > net.n_outputs:
        raise ValueError(f"labels go up to {n_classes - 1} ({n_classes} classes), but the "
                         f"network {net.name} has {net.n_outputs} outputs")


def float_input(config, x):
    """Flat samples (n, n_inputs) → the float model's input layout."""
    return to_float_input(load_network(config.net), x)


def make_network(int_model, config):
    raise ValueError(f"the network {int_model.network.name} ({config.net}) has no hardware "
                     f"generator yet: only the presets (--model mlp, cnn, lstm) compile to "
                     f"RTL in this version; run the software stages with --to quantize")
