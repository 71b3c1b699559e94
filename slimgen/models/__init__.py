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

__all__ = ["MODEL_KINDS", "get_model_kind", "make_hardware", "inner_network"]

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


def make_hardware(kind, int_model, config):
    """The run's network top: ``kind.make_network(int_model, config)``, or with
    ``config.copies`` R > 1 that many of it taking samples in turn
    (:class:`slimgen.hw.dataflow.Replicas`: sample s on copy s mod R, results in order), its
    ``inner`` the first copy (the kind's layer entries and cycle model read it) and
    ``interval`` the mean over the copies (:func:`slimgen.hw.dataflow.replicated_interval`)."""
    copies = getattr(config, "copies", 1)
    if copies == 1:
        return kind.make_network(int_model, config)
    from slimgen.hw.dataflow import Replicas, replicated_interval
    nets = [kind.make_network(int_model, config) for _ in range(copies)]
    inner = nets[0]
    if hasattr(inner, "load"):
        for net in nets:
            net._MustUse__silence = True
        raise ValueError(f"{copies} copies of a design whose weights are written at run time "
                         f"(SPRAM) are not built: give --weight-memory bram, or one copy")
    top = Replicas(nets, n_in=int_model.n_inputs, n_out=1)
    one = getattr(inner, "interval", None)
    if one is None:      # one inference at a time: the next starts as this one's result goes
        estimate = getattr(kind, "cycles_estimate", None)
        one = int(estimate(inner)) if estimate else sum(
            e["cycles"] for e in kind.layer_entries(inner))
    top.inner, top.interval = inner, replicated_interval(one, copies, int_model.n_inputs, 1)
    for name in ("slimgen_kind", "slimgen_note"):
        if hasattr(inner, name):
            setattr(top, name, getattr(inner, name))
    return top


def inner_network(net):
    """The network the kind's functions read: one copy's (:func:`make_hardware`)."""
    return getattr(net, "inner", net)
