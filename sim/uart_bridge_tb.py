"""cocotb bench of the UART bridge: the bench plays the host on the serial lines.

It bit-bangs requests into ``rx`` at the bridge's divisor, decodes the frames on ``tx``, and
checks each reply (class and logits) against the golden model, image by image, with the host
decoder of :mod:`slimgen.sw.uart_protocol`.

Data in (``SLIMGEN_TB_DATA``, an ``.npz``): ``inputs`` (n, n_inputs) pixel codes, ``expected``
(n, n_classes) golden logits, ``divisor``, ``logit_bits``, ``timeout_bytes``; and ``weights``, the
weight image (uint8) when the network takes its weights at run time (a ``load`` port). Then every
test sends it with LOAD after reset, as the host does, and the tests of loading itself run (they
are skipped for a network whose weights are in the bitstream, which must answer LOAD with ERROR).
Results out (``SLIMGEN_TB_OUT``, an ``.npz`` written whole): ``logits`` (n, n_classes) and
``cls`` (n,) as decoded from the line, and ``cycles`` per exchange (first request bit to last
reply bit).
"""

import io
import os

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, First, Timer
from cocotb.utils import get_sim_time

from slimgen.sim.streams import CLOCK_NS, bench_file, start_clock_and_reset
from slimgen.sw import uart_protocol as proto


class SerialHost:
    """The host end of an 8N1 line: drives ``dut.rx``, listens on ``dut.tx``."""

    def __init__(self, dut, divisor):
        self.dut = dut
        self.bit_ns = divisor * CLOCK_NS

    async def send(self, data):
        for byte in data:
            for level in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                self.dut.rx.value = level
                await Timer(self.bit_ns, unit="ns")

    async def recv(self, count, *, timeout_bits=2000):
        """Up to ``count`` bytes; fewer when the line stays idle for ``timeout_bits``."""
        out = bytearray()
        while len(out) < count:
            edge = FallingEdge(self.dut.tx)
            if await First(edge, Timer(timeout_bits * self.bit_ns, unit="ns")) is not edge:
                break
            await Timer(self.bit_ns // 2, unit="ns")
            assert self.dut.tx.value == 0, "start bit shorter than half a bit"
            byte = 0
            for k in range(8):
                await Timer(self.bit_ns, unit="ns")
                byte |= int(self.dut.tx.value) << k
            await Timer(self.bit_ns, unit="ns")
            assert self.dut.tx.value == 1, f"stop bit of byte {len(out)} is 0"
            out.append(byte)
        return bytes(out)

    async def exchange(self, request, reply_bytes):
        """Send ``request`` while listening; the reply bytes (the wait for the first one covers
        the request's own time on the line: a weight image takes thousands of bit times)."""
        listener = cocotb.start_soon(self.recv(reply_bytes, timeout_bits=10 * len(request) + 2000))
        await self.send(request)
        return await listener


def _load():
    with np.load(bench_file("SLIMGEN_TB_DATA")) as f:
        return {k: f[k] for k in f.files}


def _loads_weights():
    """True when the bench's network takes its weights at run time (read when the simulator
    imports this module, to skip the loading tests otherwise)."""
    path = os.environ.get("SLIMGEN_TB_DATA")
    if not path:   # imported outside a bench run
        return False
    with np.load(path) as f:
        return "weights" in f.files


async def _start(dut, d, host, *, load=True):
    """Reset; then, for a network that takes its weights at run time, LOAD them (unless
    ``load`` is False)."""
    dut.rx.value = 1
    await start_clock_and_reset(dut)
    await Timer(4 * CLOCK_NS, unit="ns")
    if load and "weights" in d:
        await _load_weights(host, d["weights"])


async def _load_weights(host, image):
    """LOAD the whole weight image; the answer must be LOADED."""
    image = bytes(image)
    answer = await host.exchange(proto.encode_load(image, len(image)), 1)
    proto.decode_loaded(answer)
    host.dut._log.info("%d weight bytes loaded over the line", len(image))


async def _infer_exact(host, x, e, logit_bits):
    """One INFER; its reply must equal the golden logits ``e``."""
    data = await host.exchange(proto.encode_request(x, len(x)), proto.reply_length(len(e)))
    reply = proto.decode_reply(data, len(e), logit_bits=logit_bits)
    assert reply.logits.tolist() == e.tolist() and reply.cls == int(np.argmax(e)), \
        f"board logits {reply.logits.tolist()} class {reply.cls}, golden {e.tolist()}"


@cocotb.test(skip=not _loads_weights())
async def bridge_answers_unloaded_until_loaded(dut):
    """After power-up an INFER is answered UNLOADED (its pixels taken: the next command is read
    in step); after LOAD the same request is exact, twice. The first test of the bench: a
    reset keeps weights loaded, only the simulation's start is a power-up."""
    d = _load()
    x, e = d["inputs"][0], d["expected"][0]
    host = SerialHost(dut, int(d["divisor"]))
    await _start(dut, d, host, load=False)
    request = proto.encode_request(x, len(x))
    for _ in range(2):
        answer = await host.exchange(request, 1)   # a RESULT would fail here all the same
        assert answer == bytes([proto.Response.UNLOADED]), f"answer before LOAD: {answer.hex()}"
    await _load_weights(host, d["weights"])
    for k in (0, 1):
        await _infer_exact(host, d["inputs"][k], d["expected"][k], int(d["logit_bits"]))


@cocotb.test()
async def bridge_matches_golden(dut):
    """Every image over the serial line; class and logits equal the golden model's."""
    d = _load()
    inputs, expected = d["inputs"], d["expected"]
    n, n_classes = expected.shape
    host = SerialHost(dut, int(d["divisor"]))
    await _start(dut, d, host)
    logits = np.zeros((n, n_classes), dtype=np.int64)
    cls = np.zeros(n, dtype=np.int64)
    cycles = np.zeros(n, dtype=np.int64)
    bad = []
    for k in range(n):
        t0 = get_sim_time("ns")
        data = await host.exchange(proto.encode_request(inputs[k], inputs.shape[1]),
                                   proto.reply_length(n_classes))
        cycles[k] = round((get_sim_time("ns") - t0) / CLOCK_NS)
        reply = proto.decode_reply(data, n_classes, logit_bits=int(d["logit_bits"]))
        logits[k], cls[k] = reply.logits, reply.cls
        if not np.array_equal(reply.logits, expected[k]) or reply.cls != np.argmax(expected[k]):
            bad.append(k)
            dut._log.error("image %d: board logits %s class %d, golden %s class %d", k,
                           reply.logits.tolist(), reply.cls, expected[k].tolist(),
                           np.argmax(expected[k]))
    buf = io.BytesIO()
    np.savez(buf, logits=logits, cls=cls, cycles=cycles)
    from slimgen.sw.artifact import write_bytes_atomic
    write_bytes_atomic(bench_file("SLIMGEN_TB_OUT"), buf.getvalue())
    assert not bad, f"{len(bad)} of {n} images differ from the golden model (first: {bad[:5]})"
    dut._log.info("%d images bit-exact over the UART, %d cycles per exchange", n,
                  int(cycles.mean()))


@cocotb.test()
async def bridge_recovers_from_bad_requests(dut):
    """An unknown command gets ERROR (and so does LOAD when the network's weights are in the
    bitstream); a request cut short times out; the next one is served. The timeout resets the
    network, but weights loaded at run time stay loaded (the SPRAMs and ``loaded`` keep them
    through a reset): the next INFER is served at once, without a new LOAD."""
    d = _load()
    x, e = d["inputs"][0], d["expected"][0]
    host = SerialHost(dut, int(d["divisor"]))
    await _start(dut, d, host)
    assert await host.exchange(b"?", 1) == bytes([proto.Response.ERROR])
    if "weights" not in d:
        assert await host.exchange(bytes([proto.Command.LOAD]), 1) == \
            bytes([proto.Response.ERROR]), "a network without a load port took a LOAD"
        await _infer_exact(host, x, e, int(d["logit_bits"]))

    request = proto.encode_request(x, len(x))
    await host.send(request[:10])
    idle_bits = (int(d["timeout_bytes"]) + 2) * 10
    assert await host.recv(1, timeout_bits=idle_bits) == b"", "the board answered half a request"

    reply = proto.decode_reply(await host.exchange(request, proto.reply_length(len(e))), len(e))
    assert reply.logits.tolist() == e.tolist()


@cocotb.test(skip=not _loads_weights())
async def bridge_abandons_a_short_load(dut):
    """A LOAD cut short gets no answer and, after the byte timeout, leaves the network reset
    (weights not loaded: UNLOADED); a whole LOAD then works again, exact."""
    d = _load()
    x, e = d["inputs"][0], d["expected"][0]
    host = SerialHost(dut, int(d["divisor"]))
    await _start(dut, d, host)
    await _infer_exact(host, x, e, int(d["logit_bits"]))
    image = bytes(d["weights"])
    await host.send(proto.encode_load(image, len(image))[:1 + len(image) // 2])
    idle_bits = (int(d["timeout_bytes"]) + 2) * 10
    assert await host.recv(1, timeout_bits=idle_bits) == b"", "the board answered half a LOAD"
    answer = await host.exchange(proto.encode_request(x, len(x)), 1)
    assert answer == bytes([proto.Response.UNLOADED]), \
        f"after an abandoned LOAD the board answered {answer.hex()}, not UNLOADED"
    await _load_weights(host, image)
    await _infer_exact(host, x, e, int(d["logit_bits"]))
