"""CNN top: convolution layers, a max-pool, dense (or balanced-sparse) engines and an argmax,
chained by streams, with the ports of :class:`slimgen.hw.network.Network`::

    i ─> ConvLayer 0 ─> … ─> ConvLayer L−1 ─> MaxPool ─> engine 0 ─> … ─> Argmax ─> o

``i`` takes the ``H·W·C`` input codes of one image in raster order, channel fastest
(``(y, x, c)``); every stage keeps that order, which is the order the first dense layer's
columns are stored in (:mod:`slimgen.sw.cnn_quant`). ``o`` gives one transfer per image,
``{cls, logits}``. Each convolution runs on a Winograd engine (any F(m×m, r×r) of
:mod:`slimgen.sw.winograd`) or on the direct engine; each dense layer on a
:class:`slimgen.hw.dense.DenseEngine` or a :class:`slimgen.hw.sparse_mac.SparseMacArray`.
"""

from amaranth.hdl import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.cnn_quant import IntCNN
from slimgen.sw.winograd import Winograd2D

from .conv_layer import ConvLayer
from .maxpool import MaxPool
from .network import Argmax, Network, result_layout

__all__ = ["CNN", "conv_cycles"]


def _per_layer(value, n, what, check):
    values = [value] * n if not isinstance(value, (list, tuple)) else list(value)
    if len(values) != n:
        raise ValueError(f"Give one {what} or one per layer ({n}), not {len(values)}")
    for v in values:
        check(v)
    return values


def conv_cycles(conv):
    """Cycles of one frame through ``conv`` (a :class:`ConvLayer`) in steady state: every window
    (band, tile, input channel) takes one engine pass of ``Cout·S`` cycles, or the window
    read of ``N + 2`` cycles when that is longer."""
    eng = conv.engine
    return conv.windows_per_frame * max(eng.pass_len, conv.n_win + 2)


class CNN(wiring.Component):
    """A whole integer CNN in hardware.

    Parameters
    ----------
    int_cnn : IntCNN
    conv_algorithms : Winograd2D, None, or a sequence of them
        Per convolution (or one for all): the Winograd algorithm, or ``None`` for the direct
        engine.
    conv_lanes : int, None, or a sequence of them
        Multipliers per convolution (``None``: the engine's default, α² or r²).
    lanes : int or sequence of int
        MAC lanes per dense layer; each is capped at the layer's outputs (rows) or inputs
        (banks).
    engines : str or sequence of str
        Per dense layer: ``"dense"`` or ``"sparse"``.
    layout : str
        Layout of the sparse engines: ``"rows"`` or ``"banks"``.
    """

    def __init__(self, int_cnn, *, conv_algorithms=None, conv_lanes=None, lanes=4,
                 engines="dense", layout="rows"):
        if not isinstance(int_cnn, IntCNN):
            raise TypeError(f"Model must be an IntCNN, not {int_cnn!r}")

        def check_alg(a):
            if a is not None and not isinstance(a, Winograd2D):
                raise TypeError(f"Convolution algorithm must be a Winograd2D or None, not {a!r}")

        def check_lanes(p):
            if p is not None and (not isinstance(p, int) or isinstance(p, bool) or p < 1):
                raise ValueError(f"Convolution lanes must be positive integers or None, "
                                 f"not {p!r}")

        n_conv = len(int_cnn.convs)
        algs = _per_layer(conv_algorithms, n_conv, "convolution algorithm", check_alg)
        clanes = _per_layer(conv_lanes, n_conv, "convolution lane count", check_lanes)
        self.qmodel = int_cnn
        shapes = int_cnn.feature_shapes
        self.convs = [ConvLayer(conv, height=h, width=w, algorithm=a, lanes=p)
                      for conv, (_, h, w), a, p in zip(int_cnn.convs, shapes, algs, clanes)]
        c, h, w = shapes[-2]
        self.pool = MaxPool(height=h, width=w, channels=c, kernel=int_cnn.pool,
                            bits=int_cnn.convs[-1].out_bits) if int_cnn.pool > 1 else None
        n_dense = len(int_cnn.dense)
        dlanes = [lanes] * n_dense if isinstance(lanes, int) else list(lanes)
        if len(dlanes) != n_dense:
            raise ValueError(f"Give one lane count or one per dense layer ({n_dense}), "
                             f"not {len(dlanes)}")
        kinds = [engines] * n_dense if isinstance(engines, str) else list(engines)
        if len(kinds) != n_dense or any(e not in Network.ENGINES for e in kinds):
            raise ValueError(f"Engines must be one of {', '.join(Network.ENGINES)} or one per "
                             f"dense layer ({n_dense}), not {engines!r}")
        self.engine_kinds = kinds
        self.engines = [Network._engine(layer, p, kind, layout)
                        for layer, p, kind in zip(int_cnn.dense, dlanes, kinds)]
        self.lanes = [conv.lanes for conv in self.convs] + [e.lanes for e in self.engines]
        super().__init__({
            "i": In(stream.Signature(unsigned(int_cnn.input_bits))),
            "o": Out(stream.Signature(result_layout(int_cnn.n_classes, int_cnn.logit_bits))),
        })

    @property
    def multipliers(self):
        """Multipliers of the convolution engines and MAC lanes of the dense engines."""
        return sum(self.lanes)

    @property
    def cycles_per_vector(self):
        """Cycles per image of each layer (convolutions, then dense layers) in steady state."""
        return [conv_cycles(c) for c in self.convs] + [e.cycles_per_vector for e in self.engines]

    def elaborate(self, platform):
        m = Module()
        stages = []
        for k, conv in enumerate(self.convs):
            m.submodules[f"conv{k}"] = conv
            stages.append(conv)
        if self.pool is not None:
            m.submodules.pool = self.pool
            stages.append(self.pool)
        for k, engine in enumerate(self.engines):
            m.submodules[f"dense{k}"] = engine
            stages.append(engine)
        m.submodules.argmax = argmax = Argmax(n_classes=self.qmodel.n_classes,
                                              logit_bits=self.qmodel.logit_bits)
        stages.append(argmax)
        wiring.connect(m, wiring.flipped(self.i), stages[0].i)
        for a, b in zip(stages, stages[1:]):
            wiring.connect(m, a.o, b.i)
        wiring.connect(m, argmax.o, wiring.flipped(self.o))
        return m
