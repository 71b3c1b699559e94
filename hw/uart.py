"""UART receiver and transmitter, 8N1, with byte streams.

A bit lasts ``divisor`` clock cycles (``clock_hz / baud``: 12 MHz / 115200 → 104). The line idles
high; a frame is a start bit (0), eight data bits LSB first, and a stop bit (1)::

    ‾‾‾‾‾|_____|  d0 |  d1 | ... |  d7 |‾‾‾‾‾‾‾‾
          start                        stop

The receiver passes the line through a two-flop synchroniser, waits for a falling edge, checks
the start bit again half a bit later, and then samples each bit in its middle, ``divisor``
cycles apart. It returns to idle in the middle of the stop bit, so it takes the next start bit
even when the sender's clock runs a little fast.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx", "MIN_DIVISOR", "check_divisor"]

#: Fewest clock cycles per bit the receiver can sample in the middle of.
MIN_DIVISOR = 4


def check_divisor(divisor):
    """Raise ``ValueError`` unless ``divisor`` is an integer of at least :data:`MIN_DIVISOR`."""
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < MIN_DIVISOR:
        raise ValueError(f"Divisor must be an integer of at least {MIN_DIVISOR} (clock cycles "
                         f"per bit), not {divisor!r}")


class UARTRx(wiring.Component):
    """UART receiver.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least :data:`MIN_DIVISOR`.

    Attributes
    ----------
    rx : In(1)
        The serial line (asynchronous to the clock; synchronised inside).
    o : Out(stream.Signature(8))
        Received bytes. The receiver cannot wait: a byte that completes while the previous one
        is still held on ``o`` is dropped, and ``overrun`` pulses.
    frame_error : Out(1)
        Pulses for one cycle when a stop bit is 0; the byte is dropped, and the receiver waits
        for the line to go high before it looks for the next start bit.
    overrun : Out(1)
        Pulses for one cycle when a byte is dropped because ``o`` was not taken in time.
    """

    def __init__(self, *, divisor):
        check_divisor(divisor)
        self.divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            "frame_error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        rx = Signal(init=1)
        m.submodules.rx_sync = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(d))
        bit = Signal(range(8))
        shreg = Signal(8)

        m.d.sync += [self.frame_error.eq(0), self.overrun.eq(0)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):  # a glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shreg.eq(Cat(shreg[1:], rx)), timer.eq(d - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):
                    with m.If(self.o.valid & ~self.o.ready):
                        m.d.sync += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += self.frame_error.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """UART transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least :data:`MIN_DIVISOR`.

    Attributes
    ----------
    i : In(stream.Signature(8))
        Bytes to send; one is taken whenever the transmitter is idle, so back-to-back bytes
        leave as back-to-back frames (10 bit times each).
    tx : Out(1)
        The serial line, high when idle.
    """

    def __init__(self, *, divisor):
        check_divisor(divisor)
        self.divisor = divisor
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        timer = Signal(range(d))
        bits = Signal(range(11))  # bit times left in the frame: 10 (start) down to 1 (stop)
        shreg = Signal(9)         # d0..d7 and the stop bit, shifted out LSB first

        with m.If(bits == 0):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += [self.tx.eq(0), shreg.eq(Cat(self.i.payload, 1)), bits.eq(10),
                             timer.eq(d - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [self.tx.eq(shreg[0]), shreg.eq(Cat(shreg[1:], 1)), bits.eq(bits - 1),
                         timer.eq(d - 1)]
        return m
