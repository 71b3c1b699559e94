"""The board top: a :class:`slimgen.hw.uart_bridge.UARTBridge` wired to a board's UART and LEDs.

This is the one place (with :mod:`.build`) that knows about pins. The UART divisor comes from
the platform's default clock and the baud rate. LEDs show what the board is doing, each with a
role (see :data:`LED_ROLES`); pulses are stretched to about 50 ms so that they can be seen.
"""

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io

from slimgen.hw.uart_bridge import UARTBridge
from slimgen.sw.uart_protocol import DEFAULT_BAUD, divisor

__all__ = ["BoardTop", "LED_ROLES"]

#: What an LED can show: ``busy`` (a request is being served), ``error`` (framing error,
#: overrun, unknown command or abandoned request), ``cls<k>`` (bit k of the last class).
LED_ROLES = ("busy", "error", "cls0", "cls1", "cls2", "cls3", "cls4", "cls5", "cls6", "cls7")

STRETCH_S = 0.05


class BoardTop(Elaboratable):
    """A network served over the board's UART 0.

    Parameters
    ----------
    qmodel : IntNetwork
        The integer model served (its input and logit widths); the network computing it is
        ``network_factory``'s, by default a :class:`slimgen.hw.network.Network` of an MLP.
    lanes : int or sequence of int
        MAC lanes of the network.
    baud : int
        Serial line rate.
    leds : sequence of str or None
        Role of LED 0, 1, ... (``None``: leave that LED off); see :data:`LED_ROLES`.
    network_options : dict or None
        More keyword arguments of :class:`slimgen.hw.network.Network` (``engines``,
        ``layout``).
    network_factory : callable or None
        Makes the network to serve instead of a :class:`slimgen.hw.network.Network` of
        ``qmodel`` (called once, at elaboration).
    """

    def __init__(self, qmodel, *, lanes=4, baud=DEFAULT_BAUD, leds=(), network_options=None,
                 network_factory=None):
        for role in leds:
            if role is not None and role not in LED_ROLES:
                raise ValueError(f"LED role must be one of {', '.join(LED_ROLES)} or None, "
                                 f"not {role!r}")
        self.qmodel, self.lanes, self.baud, self.leds = qmodel, lanes, baud, tuple(leds)
        self.network_options = dict(network_options or {})
        self.network_factory = network_factory
        self.bridge = None  # made in elaborate, where the clock frequency is known

    def elaborate(self, platform):
        m = Module()
        clock_hz = platform.default_clk_frequency
        m.submodules.bridge = bridge = UARTBridge(self.qmodel, divisor=divisor(clock_hz, self.baud),
                                                  lanes=self.lanes,
                                                  network_options=self.network_options,
                                                  network=self.network_factory()
                                                  if self.network_factory else None)
        self.bridge = bridge

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [bridge.rx.eq(rx_buf.i), tx_buf.o.eq(bridge.tx)]

        stretch = int(clock_hz * STRETCH_S)
        shown = {}
        for role, pulse in (("busy", bridge.busy), ("error", bridge.error)):
            count = Signal(range(stretch + 1), name=f"{role}_stretch")
            with m.If(pulse):
                m.d.sync += count.eq(stretch)
            with m.Elif(count != 0):
                m.d.sync += count.eq(count - 1)
            shown[role] = count != 0
        for k in range(len(bridge.cls)):
            shown[f"cls{k}"] = bridge.cls[k]

        for index, role in enumerate(self.leds):
            if role is None:
                continue
            m.submodules[f"led{index}"] = led = io.Buffer("o", platform.request("led", index,
                                                                               dir="-"))
            m.d.comb += led.o.eq(shown.get(role, 0))
        return m
