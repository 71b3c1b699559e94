"""The classifier's result: ``{cls, logits}`` (:func:`result_layout`), the running argmax over
logits presented one per cycle (:func:`running_argmax`), and the stream unit built on it
(:class:`Argmax`)."""

from amaranth.hdl import Module, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Argmax", "result_layout", "running_argmax"]


def result_layout(n_classes, logit_bits):
    """``{cls: unsigned(⌈log2 n_classes⌉), logits: signed(logit_bits)[n_classes]}``."""
    return data.StructLayout({
        "cls": unsigned(max(1, (n_classes - 1).bit_length())),
        "logits": data.ArrayLayout(signed(logit_bits), n_classes),
    })


def running_argmax(m, value, index, en, cls, *, name="argmax"):
    """On every cycle with ``en``, logit ``value`` of class ``index`` (0, 1, … in order):
    ``cls ← index`` when ``index = 0`` or ``value > best`` (then ``best ← value``). After the
    last class, ``cls`` is the first index of the largest logit, as
    :func:`slimgen.sw.golden.argmax_first`. ``cls``: the caller's register."""
    best = Signal(Value.cast(value).shape(), name=f"{name}_best")
    with m.If(en & ((index == 0) | (value > best))):
        m.d.sync += [best.eq(value), cls.eq(index)]
    return best


class Argmax(wiring.Component):
    """Collects n_classes logits from a stream and gives them with their argmax.

    ``cls = min{k : logits[k] = max_j logits[j]}``: ties go to the lowest index, as
    :func:`slimgen.sw.golden.argmax_first` does.

    Parameters
    ----------
    n_classes : int
        Logits per result, at least 2.
    logit_bits : int
        Width of a signed logit.

    Attributes
    ----------
    i : In(stream.Signature(signed(logit_bits)))
        ``n_classes`` transfers per result, class 0 first.
    o : Out(stream.Signature(result_layout(n_classes, logit_bits)))
        One transfer per result. The input is refused while a result waits on ``o``.
    """

    def __init__(self, *, n_classes, logit_bits):
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"Class count must be an integer of at least 2, not {n_classes!r}")
        if isinstance(logit_bits, bool) or not isinstance(logit_bits, int) or logit_bits < 1:
            raise ValueError(f"Logit bits must be a positive integer, not {logit_bits!r}")
        self.n_classes, self.logit_bits = n_classes, logit_bits
        super().__init__({
            "i": In(stream.Signature(signed(logit_bits))),
            "o": Out(stream.Signature(result_layout(n_classes, logit_bits))),
        })

    def elaborate(self, platform):
        m = Module()
        idx = Signal(range(self.n_classes))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.comb += self.i.ready.eq(~self.o.valid)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.payload.logits[idx].eq(self.i.payload), idx.eq(idx + 1)]
            with m.If(idx == self.n_classes - 1):
                m.d.sync += [idx.eq(0), self.o.valid.eq(1)]
        running_argmax(m, self.i.payload, idx, self.i.valid & self.i.ready, self.o.payload.cls)
        return m
