# amaranth: UnusedElaboratable=no
"""UART receiver, transmitter and bridge on Amaranth's simulator, and the host protocol."""

import re

import numpy as np
import pytest
from amaranth.sim import Simulator

from slimgen.hw.uart import UARTRx, UARTTx
from slimgen.hw.uart_bridge import UARTBridge
from dataclasses import replace

from slimgen.sim.testing import dense_network
from slimgen.sw.integer_model import IntDense
from slimgen.sw import uart_protocol as proto

DIV = 6


def frame(byte, stop=1):
    """Line levels of one 8N1 frame: start, d0..d7, stop."""
    return [0] + [(byte >> k) & 1 for k in range(8)] + [stop]


async def wait(ctx, cycles):
    if cycles > 0:
        await ctx.tick().repeat(cycles)


async def send_bytes(ctx, line, data, divisor, *, stop=1, gap=0):
    for byte in data:
        for level in frame(byte, stop):
            ctx.set(line, level)
            await ctx.tick().repeat(divisor)
        ctx.set(line, 1)
        await wait(ctx, gap + (divisor if stop == 0 else 0))


async def recv_bytes(ctx, line, count, divisor, *, timeout=None):
    """Decode ``count`` frames from ``line``: wait for a falling edge, then sample mid-bit."""
    out = []
    waited = 0
    while len(out) < count:
        while ctx.get(line):
            await ctx.tick()
            waited += 1
            if timeout is not None and waited > timeout:
                return out
        await ctx.tick().repeat(divisor // 2)
        assert ctx.get(line) == 0, "start bit too short"
        bits = []
        for _ in range(9):
            await ctx.tick().repeat(divisor)
            bits.append(ctx.get(line))
        assert bits[8] == 1, "stop bit is 0"
        out.append(sum(b << k for k, b in enumerate(bits[:8])))
    return out


def run(dut, testbench, *processes):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    for p in processes:
        sim.add_process(p)
    sim.run()


# --- receiver -------------------------------------------------------------------------------

def rx_collect(dut, got, errors):
    async def collect(ctx):
        ctx.set(dut.o.ready, 1)
        async for clk, rst, valid, payload, fe, ov in ctx.tick().sample(
                dut.o.valid, dut.o.payload, dut.frame_error, dut.overrun):
            if valid:
                got.append(payload)
            if fe or ov:
                errors.append("frame" if fe else "overrun")
    return collect


@pytest.mark.parametrize("divisor", [4, 5, DIV, 13])
def test_rx_receives_bytes(divisor):
    dut = UARTRx(divisor=divisor)
    data = [0x00, 0xFF, 0x55, 0xA3, 0x01, 0x80]
    got, errors = [], []

    async def tb(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3)
        await send_bytes(ctx, dut.rx, data, divisor)
        await ctx.tick().repeat(2 * divisor)

    run(dut, tb, rx_collect(dut, got, errors))
    assert got == data
    assert errors == []


def test_rx_tolerates_fast_sender():
    """A sender 4% fast (bit time 25 cycles against the receiver's 26) still gets through."""
    dut = UARTRx(divisor=26)
    data = list(range(0, 256, 37))
    got, errors = [], []

    async def tb(ctx):
        await ctx.tick().repeat(3)
        await send_bytes(ctx, dut.rx, data, 25)
        await ctx.tick().repeat(60)

    run(dut, tb, rx_collect(dut, got, errors))
    assert got == data


def test_rx_framing_error_drops_byte_and_recovers():
    dut = UARTRx(divisor=DIV)
    got, errors = [], []

    async def tb(ctx):
        await ctx.tick().repeat(3)
        await send_bytes(ctx, dut.rx, [0x12], DIV, stop=0)
        await send_bytes(ctx, dut.rx, [0x34], DIV)
        await ctx.tick().repeat(2 * DIV)

    run(dut, tb, rx_collect(dut, got, errors))
    assert got == [0x34]
    assert errors == ["frame"]


def test_rx_ignores_glitch():
    dut = UARTRx(divisor=8)
    got, errors = [], []

    async def tb(ctx):
        await ctx.tick().repeat(3)
        ctx.set(dut.rx, 0)
        await ctx.tick()
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(20)
        await send_bytes(ctx, dut.rx, [0x5A], 8)
        await ctx.tick().repeat(16)

    run(dut, tb, rx_collect(dut, got, errors))
    assert got == [0x5A]
    assert errors == []


def test_rx_overrun_keeps_first_byte():
    dut = UARTRx(divisor=DIV)
    events = []

    async def tb(ctx):
        await ctx.tick().repeat(3)
        await send_bytes(ctx, dut.rx, [0x11, 0x22], DIV)
        await ctx.tick().repeat(DIV)
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 0x11
        ctx.set(dut.o.ready, 1)
        await ctx.tick()
        ctx.set(dut.o.ready, 0)
        assert not ctx.get(dut.o.valid)

    async def watch(ctx):
        async for clk, rst, ov in ctx.tick().sample(dut.overrun):
            if ov:
                events.append("overrun")

    run(dut, tb, watch)
    assert events == ["overrun"]


@pytest.mark.parametrize("divisor, message", [
    (3, "Divisor must be an integer of at least 4 (clock cycles per bit), not 3"),
    (10.0, "Divisor must be an integer of at least 4 (clock cycles per bit), not 10.0"),
])
def test_divisor_checked(divisor, message):
    for cls in (UARTRx, UARTTx):
        with pytest.raises(ValueError, match=re.escape(message)):
            cls(divisor=divisor)


# --- transmitter ----------------------------------------------------------------------------

@pytest.mark.parametrize("divisor", [4, DIV, 11])
def test_tx_sends_back_to_back_frames(divisor):
    dut = UARTTx(divisor=divisor)
    data = [0x00, 0xFF, 0x55, 0xA3]
    got = []

    async def tb(ctx):
        assert ctx.get(dut.tx) == 1
        for byte in data:
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        await ctx.tick().repeat(12 * divisor)

    async def rx(ctx):
        got.extend(await recv_bytes(ctx, dut.tx, len(data), divisor))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.add_testbench(rx, background=True)
    sim.run()
    assert got == data


def test_tx_frame_timing():
    """Start bit at the cycle after the transfer; 10 bit times later the next byte is taken."""
    dut = UARTTx(divisor=DIV)
    levels = []

    async def tb(ctx):
        ctx.set(dut.i.payload, 0b1010_0110)
        ctx.set(dut.i.valid, 1)
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for _ in range(10 * DIV):
            levels.append(ctx.get(dut.tx))
            assert not ctx.get(dut.i.ready)
            await ctx.tick()
        assert ctx.get(dut.i.ready) and ctx.get(dut.tx) == 1

    run(dut, tb)
    assert levels == [lv for lv in frame(0b1010_0110) for _ in range(DIV)]


def test_rx_tx_loopback():
    """Random bytes through the transmitter into the receiver."""
    from amaranth.hdl import Module
    rx, tx = UARTRx(divisor=5), UARTTx(divisor=5)
    m = Module()
    m.submodules.rx, m.submodules.tx = rx, tx
    m.d.comb += rx.rx.eq(tx.tx)
    data = np.random.default_rng(1).integers(0, 256, 20).tolist()
    got = []

    async def tb(ctx):
        for byte in data:
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)
        await ctx.tick().repeat(12 * 5)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.add_process(rx_collect(rx, got, []))
    sim.run()
    assert got == data


# --- bridge ---------------------------------------------------------------------------------

def tiny_model(rng, n_in=5, n_hidden=4, n_out=3):
    """A two-layer integer MLP from random small weights (unit tests need no training)."""
    W0 = rng.integers(-7, 8, (n_hidden, n_in))
    b0 = rng.integers(-20, 20, n_hidden)
    W1 = rng.integers(-7, 8, (n_out, n_hidden))
    b1 = rng.integers(-20, 20, n_out)
    l0 = IntDense(W0, b0, 23, 8, True, True, in_bits=8, out_bits=8, weight_bits=4)
    l1 = IntDense(W1, b1, 1, 1, False, False, in_bits=8, weight_bits=4)
    return dense_network([l0, l1])


def bridge_exchange(q, requests, *, divisor=4, timeout_bytes=64, reply_bytes=None,
                    partial=None):
    """Send each request's bytes to a bridge and collect its reply bytes."""
    dut = UARTBridge(q, divisor=divisor, lanes=2, timeout_bytes=timeout_bytes)
    replies = []

    async def tb(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(4)
        if partial is not None:
            await send_bytes(ctx, dut.rx, partial, divisor)
            await ctx.tick().repeat((timeout_bytes + 2) * 10 * divisor)
        for k, req in enumerate(requests):
            await send_bytes(ctx, dut.rx, req, divisor)
            n = reply_bytes[k] if reply_bytes is not None else proto.reply_length(q.n_classes)
            replies.append(bytes(await recv_bytes(ctx, dut.tx, n, divisor,
                                                  timeout=2000 * divisor)))

    run(dut, tb)
    return replies


def test_bridge_matches_golden():
    rng = np.random.default_rng(0)
    q = tiny_model(rng)
    x = rng.integers(0, 256, (3, q.n_inputs))
    x[0] = 0
    replies = bridge_exchange(q, [proto.encode_request(v, q.n_inputs) for v in x])
    expected = q(x)
    for reply, e in zip(replies, expected):
        r = proto.decode_reply(reply, q.n_classes, logit_bits=q.logit_bits)
        assert r.logits.tolist() == e.tolist()
        assert r.cls == int(np.argmax(e))
    assert (expected < 0).any()  # negative logits were sign-extended on the way


def test_bridge_rejects_unknown_command_then_serves():
    rng = np.random.default_rng(2)
    q = tiny_model(rng)
    x = rng.integers(0, 256, q.n_inputs)
    err, ok = bridge_exchange(q, [b"Z", proto.encode_request(x, q.n_inputs)],
                              reply_bytes=[1, proto.reply_length(q.n_classes)])
    assert err == bytes([proto.Response.ERROR])
    with pytest.raises(proto.ProtocolError, match="The board answered ERROR"):
        proto.decode_reply(err, q.n_classes)
    assert proto.decode_reply(ok, q.n_classes).logits.tolist() == q(x[None])[0].tolist()


def test_bridge_abandons_short_request():
    """A request cut short times out; the next whole request is answered correctly."""
    rng = np.random.default_rng(3)
    q = tiny_model(rng)
    x = rng.integers(0, 256, q.n_inputs)
    req = proto.encode_request(x, q.n_inputs)
    replies = bridge_exchange(q, [req], timeout_bytes=4, partial=req[:3])
    r = proto.decode_reply(replies[0], q.n_classes)
    assert r.logits.tolist() == q(x[None])[0].tolist()


def test_bridge_checks_model():
    rng = np.random.default_rng(0)
    q = tiny_model(rng)
    wide = replace(q, input_bits=9)
    with pytest.raises(ValueError, match="inputs must be at most 8 bits wide, not 9"):
        UARTBridge(wide, divisor=8)
    with pytest.raises(TypeError, match=r"^Model must be an integer model \(an IntNetwork\), "
                                        r"not <object object at .*>, which has no input_bits, "
                                        r"n_inputs, n_classes, logit_bits$"):
        UARTBridge(object(), divisor=8)
    with pytest.raises(ValueError, match="Divisor must be an integer of at least 4"):
        UARTBridge(q, divisor=2)


# --- host protocol --------------------------------------------------------------------------

def test_protocol_round_trip():
    x = np.arange(64) % 17
    req = proto.encode_request(x, 64)
    assert len(req) == proto.request_length(64) == 65
    assert req[0] == proto.Command.INFER
    assert proto.decode_request(req, 64).tolist() == x.tolist()
    logits = np.array([-5, 300000, -(1 << 31), 7, 0, 1, 2, 3, 4, (1 << 31) - 1])
    reply = proto.encode_reply(9, logits)
    assert len(reply) == proto.reply_length(10) == 42
    assert reply[:2] == bytes([0x52, 9])
    assert reply[2:6] == (-5).to_bytes(4, "little", signed=True)
    r = proto.decode_reply(reply, 10)
    assert r.cls == 9 and r.logits.tolist() == logits.tolist()


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r[:30], "The reply is 30 bytes, expected 42 (response, class and 10 logits of 4 "
                       "bytes); a short reply means the board stopped answering or the baud "
                       "rate is wrong"),
    (lambda r: b"", "The reply is no bytes, expected 42"),
    (lambda r: r + b"\x00", "The reply is 43 bytes, expected 42"),
    (lambda r: b"\x00" + r[1:], "The reply starts with 0x00, expected RESULT (0x52); the line "
                                "is garbled or out of step"),
    (lambda r: r[:1] + b"\x0c" + r[2:], "The reply names class 12, but the model has 10 classes"),
    (lambda r: r[:1] + b"\x03" + r[2:], "The reply names class 3, but its largest logit is 1; "
                                        "the reply is garbled"),
    (lambda r: r[:6] + b"\x00\x00\x00\x40" + r[10:], "Logit 1 is 1073741824, outside the "
                                                     "20-bit range [-524288, 524287]"),
    (lambda r: b"E", "The board answered ERROR: it did not understand the command byte"),
])
def test_protocol_garbled_replies(mutate, message):
    logits = np.array([-5, 3000, 7, 0, 1, 2, 3, 4, 5, 6])
    reply = proto.encode_reply(1, logits)
    assert proto.decode_reply(reply, 10, logit_bits=20).cls == 1
    with pytest.raises(proto.ProtocolError, match=re.escape(message)):
        proto.decode_reply(mutate(reply), 10, logit_bits=20)


@pytest.mark.parametrize("pixels, message", [
    (np.zeros(63, int), "A request carries 64 pixels (shape (64,)), not shape (63,)"),
    (np.full(64, 256), "Pixels must lie in [0, 255]; pixel 0 is 256"),
    (np.r_[np.zeros(5, int), -1, np.zeros(58, int)], "pixel 5 is -1"),
    (np.zeros(64), "Pixels must be integer codes, not float64"),
])
def test_protocol_bad_requests(pixels, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        proto.encode_request(pixels, 64)


def test_protocol_divisor():
    assert proto.divisor(12e6) == 104
    assert proto.divisor(25e6) == 217
    with pytest.raises(ValueError, match="at least 4 clock cycles per bit, this gives 1.04"):
        proto.divisor(120e3)
    with pytest.raises(ValueError, match=re.escape(
            "A 2 MHz clock gives 384000 baud only to within 4.2% (divisor 5); at most 2% is "
            "reliable")):
        proto.divisor(2e6, 384000)


def test_transact_over_a_fake_port():
    """The host side against a loopback that plays the board with the golden model."""
    q = tiny_model(np.random.default_rng(5))

    class FakePort:
        def __init__(self):
            self.out = b""
            self.flushed = 0

        def reset_input_buffer(self):
            self.flushed += 1

        def write(self, data):
            x = proto.decode_request(data, q.n_inputs)
            logits = q(x[None])[0]
            self.out = proto.encode_reply(int(np.argmax(logits)), logits)

        def read(self, n):
            data, self.out = self.out[:n], self.out[n:]
            return data

    port = FakePort()
    x = np.arange(q.n_inputs) * 40
    r = proto.transact(port, x, n_inputs=q.n_inputs, n_classes=q.n_classes)
    assert r.logits.tolist() == q(x[None])[0].tolist() and port.flushed == 1
