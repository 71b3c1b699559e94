# amaranth: UnusedElaboratable=no
"""The weight-loading part of the UART protocol: LOAD, LOADED and UNLOADED, their encoders,
decoders and checks, the host's exchanges over a fake port that plays a board with SPRAM
weights, and which networks the bridge serves LOAD to."""

import re

import numpy as np
import pytest

from slimgen.sw import uart_protocol as proto
from spram_board import SpramBoard


def test_command_and_response_bytes():
    """The bytes are fixed: the gateware and every host ever built must agree on them."""
    assert proto.Command.LOAD == 0x57 == ord("W")
    assert proto.Response.LOADED == 0x4C == ord("L")
    assert proto.Response.UNLOADED == 0x55 == ord("U")
    values = [*proto.Command, *proto.Response]
    assert len(set(values)) == len(values)


def test_load_round_trip():
    image = bytes(range(256)) * 3 + b"\x00\xff"
    request = proto.encode_load(image, len(image))
    assert len(request) == proto.load_length(len(image)) == 1 + 770
    assert request[0] == proto.Command.LOAD and request[1:] == image
    assert proto.decode_load(request, len(image)) == image
    assert proto.encode_load(bytearray(image), 770) == request
    assert proto.encode_load(memoryview(image), 770) == request


@pytest.mark.parametrize("image, weight_bytes, error, message", [
    (b"\x01\x02", 3, ValueError, "The model's weight image is 3 bytes, not 2"),
    (b"\x01\x02\x03\x04", 3, ValueError, "The model's weight image is 3 bytes, not 4"),
    ([1, 2, 3], 3, TypeError, "A weight image must be bytes, not list"),
    (np.zeros(3, np.uint8), 3, TypeError, "A weight image must be bytes, not ndarray"),
    (b"", 0, ValueError, "Weight image length must be an integer from 1 to 16777216, not 0"),
    (b"\x01", True, ValueError, "Weight image length must be an integer from 1 to 16777216, "
                                "not True"),
    (b"\x01", 1 << 24 | 1, ValueError, "Weight image length must be an integer from 1 to "
                                       "16777216, not 16777217"),
])
def test_bad_loads(image, weight_bytes, error, message):
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        proto.encode_load(image, weight_bytes)


@pytest.mark.parametrize("data, message", [
    (b"W\x01\x02", "A LOAD request is 4 bytes (command and a 3-byte weight image), not 3"),
    (b"W\x01\x02\x03\x04", "A LOAD request is 4 bytes (command and a 3-byte weight image), "
                           "not 5"),
    (b"I\x01\x02\x03", "Unknown command byte 0x49; expected LOAD (0x57)"),
])
def test_decode_load_checks(data, message):
    with pytest.raises(proto.ProtocolError, match="^" + re.escape(message) + "$"):
        proto.decode_load(data, 3)


@pytest.mark.parametrize("data, message", [
    (b"", "The board did not answer the LOAD; a missing answer means the weight image is "
          "shorter than the board's network expects, the board stopped answering, or the baud "
          "rate is wrong"),
    (b"E", "The board answered ERROR to LOAD: its network keeps its weights in the bitstream "
           "and takes no weight image"),
    (b"U", "The answer to LOAD is 55, expected LOADED (0x4c) alone; the line is garbled or "
           "out of step"),
    (b"LL", "The answer to LOAD is 4c 4c, expected LOADED (0x4c) alone"),
])
def test_decode_loaded(data, message):
    assert proto.decode_loaded(b"L") is None
    with pytest.raises(proto.ProtocolError, match="^" + re.escape(message)):
        proto.decode_loaded(data)


def test_unloaded_reply():
    """UNLOADED is its own error, a ProtocolError, and alone on the line."""
    with pytest.raises(proto.WeightsNotLoaded, match=r"^The board answered UNLOADED: its "
                                                     r"network's weights are not loaded; send "
                                                     r"them with LOAD first$"):
        proto.decode_reply(b"U", 10)
    assert issubclass(proto.WeightsNotLoaded, proto.ProtocolError)
    # Any other lone byte is a garbled reply, said as such (not as a short one).
    with pytest.raises(proto.ProtocolError, match=r"^The reply starts with 0x4c, expected "
                                                  r"RESULT \(0x52\)"):
        proto.decode_reply(b"L", 10)


def _tiny():
    from slimgen.sim.testing import dense_network, random_dense_layer
    rng = np.random.default_rng(4)
    return dense_network([random_dense_layer(rng, 6, 5),
                          random_dense_layer(rng, 5, 3, requant=False)])


def test_transact_and_load_weights_over_a_fake_port():
    q = _tiny()
    image = bytes(np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8))
    board = SpramBoard(q, image)
    x = np.arange(6) * 40
    kw = dict(n_inputs=6, n_classes=3, logit_bits=q.logit_bits)
    with pytest.raises(proto.WeightsNotLoaded):
        proto.transact(board, x, **kw)
    progress = []
    proto.load_weights(board, image, weight_bytes=1000, chunk_bytes=300,
                       progress=lambda sent, total: progress.append((sent, total)))
    assert progress == [(300, 1000), (600, 1000), (900, 1000), (1000, 1000)]
    assert board.writes[-5:] == [b"W", image[:300], image[300:600], image[600:900], image[900:]]
    assert board.loaded == image
    assert proto.transact(board, x, **kw).logits.tolist() == q(x[None])[0].tolist()


def test_load_weights_checks_the_answer():
    q = _tiny()
    image = bytes(10)
    with pytest.raises(proto.ProtocolError, match="The board did not answer the LOAD"):
        proto.load_weights(SpramBoard(q, bytes(11)), image, weight_bytes=10)  # short image
    with pytest.raises(ValueError, match=r"^The model's weight image is 9 bytes, not 10$"):
        proto.load_weights(SpramBoard(q, image), image, weight_bytes=9)
    with pytest.raises(ValueError, match=r"^Chunk length must be an integer from 1 to "):
        proto.load_weights(SpramBoard(q, image), image, weight_bytes=10, chunk_bytes=0)


def test_one_byte_answers_do_not_wait_for_more():
    """transact reads the first byte alone: ERROR and UNLOADED come back without waiting out the
    port's timeout for a whole reply."""

    class Port:
        def __init__(self, answer):
            self.answer, self.reads = answer, []

        def write(self, data):
            pass

        def read(self, n):
            self.reads.append(n)
            data, self.answer = self.answer[:n], self.answer[n:]
            return data

    for answer, error in [(b"U", proto.WeightsNotLoaded), (b"E", proto.ProtocolError)]:
        port = Port(answer)
        with pytest.raises(error):
            proto.transact(port, np.zeros(6, int), n_inputs=6, n_classes=3)
        assert port.reads == [1]
    port = Port(proto.encode_reply(1, [0, 5, 2]))
    assert proto.transact(port, np.zeros(6, int), n_inputs=6, n_classes=3).cls == 1
    assert port.reads == [1, proto.reply_length(3) - 1]


# --- the bridge's side: which networks take LOAD ---------------------------------------------

def test_bridge_takes_load_from_a_network_with_a_load_port():
    """A network with ``load`` is served LOAD (its image length on the bridge); one without is
    not; a ``load`` without ``loaded`` or a valid ``weight_bytes`` is refused at once."""
    from amaranth.hdl import Fragment, unsigned
    from amaranth.lib import stream, wiring
    from amaranth.lib.wiring import In, Out

    from slimgen.hw.compiler import compile_network
    from slimgen.hw.lib.argmax import result_layout
    from slimgen.hw.uart_bridge import UARTBridge

    q = _tiny()
    net = compile_network(q, lanes=5, weights="spram")
    with_load = UARTBridge(q, divisor=8, network=net)
    without = UARTBridge(q, divisor=8, network=compile_network(q, lanes=5))
    assert with_load.weight_bytes == net.weight_bytes > 0 and without.weight_bytes is None
    for bridge in (with_load, without):
        Fragment.get(bridge, None)   # both elaborate

    class Ports(wiring.Component):
        def __init__(self, weight_bytes, *, loaded=True):
            self.weight_bytes = weight_bytes
            ports = {"i": In(stream.Signature(unsigned(8))),
                     "o": Out(stream.Signature(result_layout(q.n_classes, q.logit_bits))),
                     "load": In(stream.Signature(unsigned(8)))}
            if loaded:
                ports["loaded"] = Out(1)
            super().__init__(ports)

    with pytest.raises(TypeError, match=r"^A network with a load port must also have a loaded "
                                        r"port; .* has none$"):
        UARTBridge(q, divisor=8, network=Ports(10, loaded=False))
    for bad in (0, -3, 2.5, True, None, 1 << 24 | 1):
        with pytest.raises(ValueError, match=rf"^A network's weight_bytes must be an integer from "
                                             rf"1 to 16777216, not {re.escape(repr(bad))}$"):
            UARTBridge(q, divisor=8, network=Ports(bad))
