"""The recurrent (LSTM or GRU) classifier top: :class:`slimgen.hw.lstm_engine.LstmEngine`
(gates, element-wise step and head on shared lanes), then
:class:`slimgen.hw.lib.argmax.Argmax`::

    i ─> LstmEngine ─> logits ─> Argmax ─> o {cls, logits[n_classes]}
"""

from amaranth.hdl import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .lib.argmax import Argmax, result_layout
from .lstm_engine import LstmEngine

__all__ = ["LstmClassifier"]


class LstmClassifier(wiring.Component):
    """An LSTM or GRU classifier in hardware: :class:`slimgen.hw.lstm_engine.LstmEngine`
    (gates, element-wise step and head on shared lanes), then
    :class:`slimgen.hw.lib.argmax.Argmax`, with the ports of :class:`slimgen.hw.network.Network`.

    Parameters
    ----------
    model : IntNetwork
        An LSTM or GRU cell and a dense head
        (:func:`slimgen.hw.lstm_schedule.recurrent_classifier`).
    lanes : int
        Multiply lanes of the engine (shared by the gate products and the head).
    ew_multipliers : int
        Multipliers of the engine's element-wise unit (1 or 2).
    act_memory : str
        Where the engine's lanes keep their activations: ``"auto"`` or ``"bram"``
        (:mod:`slimgen.hw.lib.act_memory`).

    Attributes
    ----------
    i : In(stream.Signature(unsigned(in_bits)))
        ``steps · n_in`` transfers per sample.
    o : Out(stream.Signature(result_layout(n_classes, logit_bits)))
        One transfer per sample: the class and all logits.
    """

    def __init__(self, model, *, lanes=4, ew_multipliers=1, act_memory="auto"):
        self.engine = LstmEngine(model, lanes=lanes, ew_multipliers=ew_multipliers,
                                 act_memory=act_memory)
        self.model = model
        super().__init__({
            "i": In(stream.Signature(unsigned(model.input_bits))),
            "o": Out(stream.Signature(result_layout(model.n_classes, model.logit_bits))),
        })

    @property
    def interval(self):
        """Cycles between results with sequences back to back (inputs always valid, ``o``
        always ready): the next sequence's first input is taken as this one's result goes,
        so one cycle less than :attr:`LstmEngine.cycles_estimate` (checked on the fuzz
        cases)."""
        return self.engine.cycles_estimate - 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = self.engine
        m.submodules.argmax = argmax = Argmax(n_classes=self.model.n_classes,
                                              logit_bits=self.model.logit_bits)
        wiring.connect(m, wiring.flipped(self.i), self.engine.i)
        wiring.connect(m, self.engine.o, argmax.i)
        wiring.connect(m, argmax.o, wiring.flipped(self.o))
        return m
