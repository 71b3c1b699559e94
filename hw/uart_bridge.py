"""A network behind a UART: requests in, replies out, as :mod:`slimgen.sw.uart_protocol` says.

::

    rx ─> UARTRx ─> command ─INFER─> pixels ─> Network ─> {cls, logits} ─> reply ─> UARTTx ─> tx
                       │ └─LOAD──> weight image ─> Network.load ──> LOADED ──────────┤
                       └──other──> Response.ERROR ───────────────────────────────────┘

The states of the bridge::

    START ─> COMMAND ─INFER─> PIXELS ─> COMPUTE ─> HEADER ─> CLASS ─> LOGITS ─> COMMAND
                │ │  └──INFER, weights not loaded─> SKIP ─> UNLOADED ────────> COMMAND
                │ └─LOAD─> WEIGHTS ─> LOADED ────────────────────────────────> COMMAND
                └──other─> REJECT ───────────────────────────────────────────> COMMAND

    PIXELS, SKIP, WEIGHTS ──no byte for timeout_bytes byte times──> COMMAND (error, network reset)

The bridge answers one request at a time. Bytes that arrive while it computes or answers are
dropped. When a request stops short (no byte for ``timeout_bytes`` byte times), the bridge
resets the network, pulses ``error`` and waits for a new command, so a host that gave up on an
exchange cannot leave the board out of step.

A network with a ``load`` port keeps its weights in memory the bitstream cannot initialise and
starts without them. LOAD resets the network (so a new image always starts at its first byte),
streams the next ``network.weight_bytes`` bytes into ``load`` and answers LOADED once the
network's ``loaded`` is high; a LOAD cut short is abandoned as above, and the reset clears
``loaded``. An INFER while ``loaded`` is low takes its pixels (without passing them on) and is
answered UNLOADED. An INFER cut short resets the network too, so its weights must be sent again
(the host does so when it is answered UNLOADED). A network without ``load`` answers LOAD with
ERROR, as any unknown command.
"""

from amaranth.hdl import Module, ResetInserter, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.uart_protocol import (MAX_CLASSES, MAX_LOGIT_BITS, MAX_WEIGHT_BYTES, LOGIT_BYTES,
                                      Command, Response)

from .lib.argmax import result_layout
from .network import Network
from .uart import UARTRx, UARTTx, check_divisor

__all__ = ["UARTBridge"]


class UARTBridge(wiring.Component):
    """An integer network served over a UART.

    Parameters
    ----------
    qmodel : IntNetwork
        At most 8 input bits (a pixel is a byte), at most 256 classes, logits at most 32 bits.
    divisor : int
        Clock cycles per bit (clock / baud).
    lanes : int or sequence of int
        MAC lanes, passed to :class:`slimgen.hw.network.Network`.
    timeout_bytes : int
        Byte times without a pixel after which a request is abandoned (1024: about 90 ms at
        115200 baud, far longer than any gap a host's serial driver leaves inside a request).
    network_options : dict or None
        More keyword arguments of :class:`slimgen.hw.network.Network` (``engines``,
        ``layout``).
    network : Component or None
        The network to serve instead of a :class:`Network` of ``qmodel`` (for example an LSTM
        classifier): same ports as :class:`Network`, computing ``qmodel``; with, for weights
        loaded at run time, ``load`` (``In(stream.Signature(unsigned(8)))``, the weight image),
        ``loaded`` (``Out(1)``, high once the whole image is written, cleared by reset) and the
        attribute ``weight_bytes``, the image's length.

    Attributes
    ----------
    rx : In(1)
        Serial line from the host.
    tx : Out(1)
        Serial line to the host.
    busy : Out(1)
        High from a command byte until its reply has been handed to the transmitter.
    cls : Out(range(n_classes))
        The class of the last reply.
    error : Out(1)
        Pulses on a framing error, an overrun, an unknown command, or an abandoned request.
    weight_bytes : int or None
        The length of the network's weight image when it takes its weights over the line (it
        has a ``load`` port), else None.
    """

    def __init__(self, qmodel, *, divisor, lanes=4, timeout_bytes=1024, network_options=None,
                 network=None):
        missing = [a for a in ("input_bits", "n_inputs", "n_classes", "logit_bits")
                   if not hasattr(qmodel, a)]
        if missing:
            raise TypeError(f"Model must be an integer model (an IntNetwork), not {qmodel!r}, "
                            f"which has no {', '.join(missing)}")
        check_divisor(divisor)
        if qmodel.input_bits > 8:
            raise ValueError(f"A pixel travels as one byte, so the model's inputs must be at most "
                             f"8 bits wide, not {qmodel.input_bits}")
        if qmodel.n_classes > MAX_CLASSES:
            raise ValueError(f"The class travels as one byte, so the model may have at most "
                             f"{MAX_CLASSES} classes, not {qmodel.n_classes}")
        if qmodel.logit_bits > MAX_LOGIT_BITS:
            raise ValueError(f"Logits travel as {MAX_LOGIT_BITS}-bit integers, so the model's may "
                             f"be at most that wide, not {qmodel.logit_bits} bits")
        if not isinstance(timeout_bytes, int) or timeout_bytes < 2:
            raise ValueError(f"Timeout must be an integer of at least 2 byte times, "
                             f"not {timeout_bytes!r}")
        self.network = network if network is not None else \
            Network(qmodel, lanes=lanes, **(network_options or {}))
        self.weight_bytes = _weight_bytes(self.network)
        self.rx_unit = UARTRx(divisor=divisor)
        self.tx_unit = UARTTx(divisor=divisor)
        self.qmodel, self.divisor = qmodel, divisor
        self.timeout_cycles = timeout_bytes * 10 * divisor
        cls_shape = result_layout(qmodel.n_classes, qmodel.logit_bits)["cls"].shape
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "busy": Out(1),
            "cls": Out(cls_shape),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n_inputs, n_classes = self.qmodel.n_inputs, self.qmodel.n_classes
        rx, tx, net = self.rx_unit, self.tx_unit, self.network
        net_rst = Signal()
        m.submodules.rx = rx
        m.submodules.tx = tx
        m.submodules.network = ResetInserter(net_rst)(net)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]

        loads_weights = self.weight_bytes is not None
        n_bytes = max(n_inputs, self.weight_bytes or 0)
        count = Signal(range(n_bytes))     # bytes of the request taken so far
        idle = Signal(range(self.timeout_cycles + 1))
        j = Signal(range(n_classes))       # logit being sent
        b = Signal(range(LOGIT_BYTES))     # its byte, least significant first
        result = net.o.payload             # held by the network until net.o.ready
        logit = Signal(signed(8 * LOGIT_BYTES))
        m.d.comb += logit.eq(result.logits[j])  # sign-extends

        m.d.sync += self.error.eq(rx.frame_error | rx.overrun)

        def take(taken, last, done):
            """Count a request's bytes (``taken`` this cycle) up to ``last``, then go to
            ``done``; after ``timeout_cycles`` without one, reset the network and wait for a
            command."""
            with m.If(taken):
                m.d.sync += [count.eq(count + 1), idle.eq(0)]
                with m.If(count == last):
                    m.next = done
            with m.Elif(idle == self.timeout_cycles):
                m.d.comb += net_rst.eq(1)
                m.d.sync += self.error.eq(1)
                m.next = "COMMAND"
            with m.Else():
                m.d.sync += idle.eq(idle + 1)

        def send(byte, done, *then):
            """Hand ``byte`` to the transmitter, dropping what arrives; then do ``then`` and go
            to ``done``."""
            m.d.comb += [rx.o.ready.eq(1), tx.i.payload.eq(byte), tx.i.valid.eq(1)]
            with m.If(tx.i.ready):
                m.d.sync += then
                m.next = done

        with m.FSM() as fsm:
            # One cycle out of reset before serving. Icarus may not evaluate an ``always @*``
            # block at time 0 when its inputs do not change, so ready signals that depend only
            # on the initial state would stay X until the state first changes.
            with m.State("START"):
                m.next = "COMMAND"
            with m.State("COMMAND"):
                m.d.comb += rx.o.ready.eq(1)
                with m.If(rx.o.valid):
                    with m.If(rx.o.payload == Command.INFER):
                        m.d.sync += [count.eq(0), idle.eq(0)]
                        m.next = "PIXELS"
                        if loads_weights:
                            with m.If(~net.loaded):
                                m.next = "SKIP"
                    if loads_weights:
                        with m.Elif(rx.o.payload == Command.LOAD):
                            m.d.comb += net_rst.eq(1)
                            m.d.sync += [count.eq(0), idle.eq(0)]
                            m.next = "WEIGHTS"
                    with m.Else():
                        m.d.sync += self.error.eq(1)
                        m.next = "REJECT"
            with m.State("REJECT"):
                send(Response.ERROR, "COMMAND")

            # --- INFER ---
            with m.State("PIXELS"):
                m.d.comb += [net.i.payload.eq(rx.o.payload), net.i.valid.eq(rx.o.valid),
                             rx.o.ready.eq(net.i.ready)]
                take(rx.o.valid & net.i.ready, n_inputs - 1, "COMPUTE")
            with m.State("COMPUTE"):
                m.d.comb += rx.o.ready.eq(1)
                with m.If(net.o.valid):
                    m.next = "HEADER"
            with m.State("HEADER"):
                send(Response.RESULT, "CLASS")
            with m.State("CLASS"):
                send(result.cls, "LOGITS", j.eq(0), b.eq(0))
            with m.State("LOGITS"):
                m.d.comb += [rx.o.ready.eq(1), tx.i.valid.eq(1),
                             tx.i.payload.eq(logit.as_unsigned().word_select(b, 8))]
                with m.If(tx.i.ready):
                    m.d.sync += b.eq(b + 1)
                    with m.If(b == LOGIT_BYTES - 1):
                        m.d.sync += j.eq(j + 1)
                        with m.If(j == n_classes - 1):
                            m.d.comb += net.o.ready.eq(1)
                            m.d.sync += self.cls.eq(result.cls)
                            m.next = "COMMAND"

            if loads_weights:
                # --- INFER without weights: take the pixels, answer UNLOADED ---
                with m.State("SKIP"):
                    m.d.comb += rx.o.ready.eq(1)
                    take(rx.o.valid, n_inputs - 1, "UNLOADED")
                with m.State("UNLOADED"):
                    send(Response.UNLOADED, "COMMAND")

                # --- LOAD: the weight image into the network, then LOADED ---
                with m.State("WEIGHTS"):
                    m.d.comb += [net.load.payload.eq(rx.o.payload),
                                 net.load.valid.eq(rx.o.valid), rx.o.ready.eq(net.load.ready)]
                    take(rx.o.valid & net.load.ready, self.weight_bytes - 1, "LOADED")
                with m.State("LOADED"):
                    with m.If(net.loaded):  # the last write may take a few cycles
                        send(Response.LOADED, "COMMAND")
        m.d.comb += self.busy.eq(~fsm.ongoing("COMMAND") & ~fsm.ongoing("START"))
        return m


def _weight_bytes(network):
    """The length of ``network``'s weight image when it takes its weights at run time (it has
    a ``load`` port), else None."""
    members = network.signature.members
    if "load" not in members:
        return None
    if "loaded" not in members:
        raise TypeError(f"A network with a load port must also have a loaded port; "
                        f"{network!r} has none")
    weight_bytes = getattr(network, "weight_bytes", None)
    if isinstance(weight_bytes, bool) or not isinstance(weight_bytes, int) or \
            not 1 <= weight_bytes <= MAX_WEIGHT_BYTES:
        raise ValueError(f"A network's weight_bytes must be an integer from 1 to "
                         f"{MAX_WEIGHT_BYTES}, not {weight_bytes!r}")
    return weight_bytes
