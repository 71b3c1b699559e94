"""Streaming max-pool over raster streams: ``k × k`` windows, stride ``k``, one row buffer.

Computes :func:`slimgen.sw.cnn_quant.maxpool_int` on ``height × width × channels`` frames that
arrive in raster order with the channel fastest, ``(y, x, c)``, and sends the pooled frame
``(height // k) × (width // k) × channels`` in the same order. Rows and columns that do not
fill a window are taken and dropped.

Schedule. A row buffer (one word per pooled column and channel, address ``(x // k)·C + c``)
holds the running maximum of the windows of the current pooled row. Input ``(y, x, c)`` with
``y mod k = x mod k = 0`` starts its window (the buffer word is overwritten), others update it
with the larger value; the last one of a window (``y mod k = x mod k = k − 1``) sends the
maximum. One input per cycle: the read is issued when an input is taken, the maximum is
written back the next cycle, and the read port is transparent to that write, so an update of
the same word in back-to-back cycles (one channel) sees its predecessor's result.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MaxPool"]


def _check_positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


class MaxPool(wiring.Component):
    """Max-pool of unsigned activations in hardware.

    Parameters
    ----------
    height, width, channels : int
        Input frame size.
    kernel : int
        Window size and stride ``k`` (at most ``height`` and ``width``).
    bits : int
        Width of the unsigned activations.

    Attributes
    ----------
    i : In(stream.Signature(unsigned(bits)))
        ``height·width·channels`` transfers per frame, ``(y, x, c)`` order.
    o : Out(stream.Signature(unsigned(bits)))
        ``(height // k)·(width // k)·channels`` transfers per frame, same order.
    """

    def __init__(self, *, height, width, channels, kernel=2, bits=8):
        for name, v in (("Height", height), ("Width", width), ("Channel count", channels),
                        ("Kernel", kernel), ("Bit width", bits)):
            _check_positive(name, v)
        if kernel > height or kernel > width:
            raise ValueError(f"Kernel {kernel} is larger than the {height}×{width} frame")
        self.height, self.width, self.channels = height, width, channels
        self.kernel, self.bits = kernel, bits
        self.out_h, self.out_w = height // kernel, width // kernel
        super().__init__({
            "i": In(stream.Signature(unsigned(bits))),
            "o": Out(stream.Signature(unsigned(bits))),
        })

    @property
    def n_out(self):
        return self.out_h * self.out_w * self.channels

    def elaborate(self, platform):
        m = Module()
        k, C = self.kernel, self.channels
        m.submodules.row = row = memory.Memory(shape=unsigned(self.bits),
                                               depth=self.out_w * C, init=[])
        wr = row.write_port()
        rd = row.read_port(transparent_for=(wr,))

        # Input position: y, x, c and the window phases y mod k, x mod k, pooled column x // k.
        y = Signal(range(self.height))
        x = Signal(range(self.width))
        c = Signal(range(C))
        ym = Signal(range(k))
        xm = Signal(range(k))
        px = Signal(range(self.out_w + 1))
        inside = (y < self.out_h * k) & (px < self.out_w)

        advance = ~self.o.valid | self.o.ready
        take = self.i.valid & advance
        m.d.comb += self.i.ready.eq(advance)
        m.d.comb += [rd.addr.eq(px * C + c), rd.en.eq(advance)]

        # Stage 1: the taken input, its window flags and its buffer address.
        s_valid, s_first, s_last = Signal(), Signal(), Signal()
        s_data = Signal(unsigned(self.bits))
        s_addr = Signal.like(rd.addr)
        with m.If(advance):
            m.d.sync += [s_valid.eq(take & inside), s_first.eq((ym == 0) & (xm == 0)),
                         s_last.eq((ym == k - 1) & (xm == k - 1)), s_data.eq(self.i.payload),
                         s_addr.eq(rd.addr)]
        best = Mux(s_first | (s_data > rd.data), s_data, rd.data)
        m.d.comb += [wr.addr.eq(s_addr), wr.data.eq(best), wr.en.eq(s_valid & advance)]
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(s_valid & s_last), self.o.payload.eq(best)]

        with m.If(take):
            m.d.sync += c.eq(Mux(c == C - 1, 0, c + 1))
            with m.If(c == C - 1):
                m.d.sync += [x.eq(x + 1), xm.eq(Mux(xm == k - 1, 0, xm + 1))]
                with m.If(xm == k - 1):
                    m.d.sync += px.eq(px + 1)
                with m.If(x == self.width - 1):
                    m.d.sync += [x.eq(0), xm.eq(0), px.eq(0), y.eq(y + 1),
                                 ym.eq(Mux(ym == k - 1, 0, ym + 1))]
                    with m.If(y == self.height - 1):
                        m.d.sync += [y.eq(0), ym.eq(0)]
        return m
