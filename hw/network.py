"""Network top: the dense layers of an integer MLP chained by streams, and an argmax unit.

``i`` takes the n_inputs integer input codes of one sample, one per transfer; ``o`` gives one
transfer per sample with the class (first index of the largest logit) and all logits::

    i ─> DenseEngine 0 ─> DenseEngine 1 ─> ... ─> Argmax ─> o {cls, logits[n_classes]}

A pipeline: every layer works on a sample of its own (a dense engine loads the next one
meanwhile), so results follow each other every :attr:`Network.interval` cycles, the slowest
stage's, while each takes :attr:`Network.latency` cycles through.
"""

from amaranth.hdl import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.integer_model import IntNetwork

from .dense import DenseEngine, check_dense
from .lib.argmax import Argmax, result_layout

__all__ = ["Network", "mlp_layers"]


def mlp_layers(int_net):
    """The :class:`IntDense` layers of an integer MLP (an :class:`IntNetwork` of dense layers
    only, every hidden one requantizing with ReLU, the last giving its accumulators), or
    ``TypeError``/``ValueError`` saying what does not fit."""
    if not isinstance(int_net, IntNetwork):
        raise TypeError(f"Model must be an IntNetwork, not {int_net!r}")
    other = [layer.kind for layer in int_net.layers if layer.kind != "dense"]
    if other or not int_net.layers:
        raise ValueError(f"The MLP engines take dense layers only, not {other[0]} layers"
                         if other else "The network has no layers")
    layers = int_net.layers
    for k, layer in enumerate(layers):
        check_dense(layer, f"Layer {k}")
        if layer.in_signed:
            raise ValueError(f"Layer {k} takes signed inputs; the MLP engines take unsigned "
                             f"ones")
    for k, layer in enumerate(layers[:-1]):
        if not (layer.requant and layer.relu):
            raise ValueError(f"Layer {k} is hidden: it must requantize with ReLU")
    if layers[-1].requant:
        raise ValueError("The last layer must give its accumulators (the logits), "
                         "not requantize them")
    return layers


class Network(wiring.Component):
    """A whole integer MLP in hardware, one engine per layer.

    Parameters
    ----------
    qmodel : IntNetwork
        Dense layers only (:func:`mlp_layers`).
    lanes : int or sequence of int
        MAC lanes per layer (one number for all layers); each is capped at the layer's outputs.
    engines : str or sequence of str
        Per layer (or one for all): ``"dense"`` (:class:`DenseEngine`, one cycle per weight,
        zeros included) or ``"sparse"`` (:class:`slimgen.hw.sparse_mac.SparseMacArray`, one
        cycle per non-zero weight of the busiest lane).
    layout : str
        Layout of the sparse engines: ``"rows"`` (lanes own output neurons) or ``"banks"``
        (lanes own input banks). With banks, a sparse first layer stores its inputs in
        ``qmodel.input_order`` (the inputs still arrive in their natural order); other layers
        and layouts have no use for it.
    """

    ENGINES = ("dense", "sparse")

    def __init__(self, qmodel, *, lanes=4, engines="dense", layout="rows"):
        layers = mlp_layers(qmodel)
        n = len(layers)
        lanes = [lanes] * n if isinstance(lanes, int) else list(lanes)
        if len(lanes) != n:
            raise ValueError(f"Give one lane count or one per layer ({n}), not {len(lanes)}")
        engines = [engines] * n if isinstance(engines, str) else list(engines)
        if len(engines) != n or any(e not in self.ENGINES for e in engines):
            raise ValueError(f"Engines must be one of {', '.join(self.ENGINES)} or one per layer "
                             f"({n}), not {engines!r}")
        self.qmodel = qmodel
        self.engine_kinds = engines
        orders = [qmodel.input_order] + [None] * (n - 1)
        self.engines = [self._engine(layer, p, kind, layout, order)
                        for layer, p, kind, order in zip(layers, lanes, engines, orders)]
        self.lanes = [e.lanes for e in self.engines]
        super().__init__({
            "i": In(stream.Signature(unsigned(qmodel.input_bits))),
            "o": Out(stream.Signature(result_layout(qmodel.n_classes, qmodel.logit_bits))),
        })

    @staticmethod
    def _engine(layer, lanes, kind, layout, order=None):
        if kind == "dense":
            return DenseEngine(layer, lanes=min(lanes, layer.n_out))
        from .sparse_mac import SparseMacArray
        cap = layer.n_out if layout == "rows" else layer.n_in
        return SparseMacArray(layer, lanes=min(lanes, cap),
                              layout=layout, order=order if layout == "banks" else None)

    @property
    def cycles_per_vector(self):
        """Per layer, the engine's :attr:`~DenseEngine.cycles_per_vector` (a dense engine's
        latency; a sparse array's cycles per vector streamed back to back)."""
        return [e.cycles_per_vector for e in self.engines]

    @property
    def stage_intervals(self):
        """Per layer, then the argmax: cycles between results of each stage on its own, inputs
        always valid, output always ready. A dense engine's :attr:`~DenseEngine.interval`; a
        sparse array's cycles per vector (it loads while it sends, but computes alone); the
        argmax takes n_classes logits, then gives its result in a cycle of its own."""
        return [e.interval if isinstance(e, DenseEngine) else e.cycles_per_vector
                for e in self.engines] + [self.qmodel.n_classes + 1]

    @property
    def interval(self):
        """Cycles between consecutive results with samples streamed back to back (inputs
        always valid, ``o`` always ready), in the steady state: the slowest stage's::

            interval = max(max_k interval_k, n_classes + 1)

        (:attr:`stage_intervals`). A dense engine buffers a whole vector at its input while it
        computes the one before, and a sparse array loads while it sends, so a faster stage
        never holds back a slower one (checked cycle for cycle on random dense, sparse and
        mixed chains).
        """
        return max(self.stage_intervals)

    @property
    def latency(self):
        """Cycles from a sample's first input transfer to its result's transfer, both counted,
        the network idle before and ``o`` ready::

            latency = L_0 + Σ_{k ≥ 1} (L_k − n_in_k) + 1

        A layer loads its inputs as the layer before sends them and starts computing on the
        last one, so each layer after the first adds its latency L_k less its load; the argmax
        gives its result a cycle after the last logit. L_k is a dense engine's
        :attr:`~DenseEngine.cycles_per_vector`, a sparse array's load, compute and read-back
        in turn: n_in + run_cycles + n_out + 3.
        """
        def stage_latency(e):
            if isinstance(e, DenseEngine):
                return e.cycles_per_vector
            return e.layer.n_in + e.run_cycles + e.layer.n_out + 3
        first, *rest = self.engines
        return stage_latency(first) + sum(stage_latency(e) - e.layer.n_in for e in rest) + 1

    @property
    def multipliers(self):
        """MAC lanes in the whole network (the requantizers not counted)."""
        return sum(self.lanes)

    def elaborate(self, platform):
        m = Module()
        for k, engine in enumerate(self.engines):
            m.submodules[f"layer{k}"] = engine
        m.submodules.argmax = argmax = Argmax(n_classes=self.qmodel.n_classes,
                                              logit_bits=self.qmodel.logit_bits)
        wiring.connect(m, wiring.flipped(self.i), self.engines[0].i)
        for a, b in zip(self.engines, self.engines[1:]):
            wiring.connect(m, a.o, b.i)
        wiring.connect(m, self.engines[-1].o, argmax.i)
        wiring.connect(m, argmax.o, wiring.flipped(self.o))
        return m
