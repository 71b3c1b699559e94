"""Model kinds the flow can take from training to hardware: one module each, same functions.

A model kind module provides:

- ``VIEW``: the data view it trains on (``"vector"``, ``"image"`` or ``"sequence"``);
- ``float_spec(config) -> list``: the float model's spec for :func:`slimgen.sw.nn.build_model`;
- ``quantize(model, data, config, compression) -> int_model``: the integer golden model, an
  object with ``input_scale``, ``input_bits``, ``n_inputs``, ``n_classes``, ``logit_bits`` and
  ``__call__(x_q) -> logits`` on integer inputs (n, n_inputs) in the raster order of the
  data's ``"vector"`` view (what the hardware's input stream carries);
- ``save_int(path, int_model, *, dataset, split_seed)`` and ``load_int(path) -> int_model``;
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

MODEL_KINDS = ("mlp", "cnn", "lstm")


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
