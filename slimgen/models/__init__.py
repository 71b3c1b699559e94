"""Model kinds the flow can take from training to hardware: one module each, same functions.

A model kind module provides:

- ``VIEW``: the data view it trains on (``"vector"``, ``"image"`` or ``"sequence"``), and
  optionally ``float_input(config, x)``, which shapes the vector view for the float model;
- ``network(config, act_bits=None, pixel_max=16) -> Network``: the network description
  (:mod:`slimgen.sw.network`) every software stage walks: training, compression,
  quantization (:func:`slimgen.sw.quantize.quantize_network`) into the integer model
  (:class:`slimgen.sw.integer_model.IntNetwork`), the artifact;
- ``make_network(int_model, config) -> Component`` with the ports of
  :class:`slimgen.hw.network.Network` (``i``: input codes, ``o``: one result per sample), a new
  one per call;
- ``layer_entries(network) -> list of dict``: per layer ``name``, ``kind``, ``engine``,
  ``shape``, ``weight_bits``, ``sparsity``, ``nonzeros``, ``nonzeros_per_group``, ``lanes``,
  ``mults_direct``, ``mults`` (per output), ``cycles``.

``config`` is the flow's :class:`slimgen.settings.RunConfig`; ``compression`` the ``compression``
entry of a compressed artifact's manifest (empty when nothing was compressed).
"""

import importlib

__all__ = ["MODEL_KINDS", "get_model_kind"]

MODEL_KINDS = ("mlp", "cnn", "lstm", "net")


def get_model_kind(name):
    """The module of model kind ``name``."""
    if name not in MODEL_KINDS:
        raise ValueError(f"Model must be one of {', '.join(MODEL_KINDS)}, not {name!r}")
    try:
        return importlib.import_module(f"slimgen.models.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"slimgen.models.{name}":
            raise ValueError(f"Model kind {name!r} is not available in this version") from None
        raise
