"""The serial protocol between a host and a board running a network: the one definition that the
gateware (:mod:`slimgen.hw.uart_bridge`) and the host share.

One request, one reply, one request in flight::

    host  -> board   Command.INFER, pixel[0], ..., pixel[n_inputs - 1]          (1 + n_inputs bytes)
    board -> host    Response.RESULT, cls, logit[0], ..., logit[n_classes - 1]  (2 + 4·n_classes)
                  or Response.UNLOADED                                          (1 byte)

    host  -> board   Command.LOAD, byte[0], ..., byte[weight_bytes - 1]         (1 + weight_bytes)
    board -> host    Response.LOADED                                            (1 byte)

Each pixel is one unsigned byte (the network's integer input code). Each logit is a 32-bit
two's complement integer, little-endian (the hardware sign-extends its ``logit_bits``-wide
accumulators). ``cls`` is the index of the first largest logit.

A network that keeps its weights in memory the bitstream cannot initialise (the UP5K's SPRAM)
starts without them: the host sends its weight image (``weights.bin`` of the run, exactly the
network's ``weight_bytes`` bytes, in order) with ``Command.LOAD``, and the board answers
``Response.LOADED`` once every byte is written. Until then the board answers an INFER with
``Response.UNLOADED``, after taking its pixels, so that host and board stay in step. The weights
stay until the board is reset or reprogrammed; a LOAD replaces them whole. A network whose
weights are in the bitstream answers LOAD as any command it does not know.

A command byte the board does not know is answered with the single byte ``Response.ERROR``, and
the board waits for the next command. The line is 8N1; the board side uses a clock divisor
``round(clock_hz / baud)``, see :func:`divisor`.

This module is NumPy and the standard library only; :func:`transact` runs one exchange and
:func:`load_weights` one load over any object with pyserial's ``write``/``read`` (and, if present,
``reset_input_buffer``).
"""

import enum
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Command", "Response", "DEFAULT_BAUD", "LOGIT_BYTES", "HEADER_BYTES", "MAX_CLASSES",
    "MAX_LOGIT_BITS", "ProtocolError", "Reply", "request_length", "reply_length", "divisor",
    "encode_request", "decode_request", "encode_reply", "decode_reply", "transact",
    "MAX_WEIGHT_BYTES", "WeightsNotLoaded", "load_length", "encode_load", "decode_load",
    "decode_loaded", "load_weights",
]

DEFAULT_BAUD = 115200
#: Bytes per logit on the wire.
LOGIT_BYTES = 4
#: Bytes before the logits in a reply: the response byte and the class byte.
HEADER_BYTES = 2
#: The class travels in one byte.
MAX_CLASSES = 256
#: Logits are sign-extended to 32 bits, so the hardware's may be at most that wide.
MAX_LOGIT_BITS = 8 * LOGIT_BYTES
#: Longest weight image a LOAD carries (16 MiB, 24 minutes at 115200 baud; the UP5K's SPRAM holds
#: 128 KiB).
MAX_WEIGHT_BYTES = 1 << 24


class Command(enum.IntEnum):
    """First byte of a request."""
    INFER = 0x49  # 'I': n_inputs pixel bytes follow
    LOAD = 0x57   # 'W': the weight image follows, weight_bytes bytes


class Response(enum.IntEnum):
    """First byte of a reply."""
    RESULT = 0x52  # 'R': the class byte and the logits follow
    ERROR = 0x45     # 'E': the command byte was not understood; nothing follows
    LOADED = 0x4C    # 'L': every byte of the weight image is written; nothing follows
    UNLOADED = 0x55  # 'U': an INFER (its pixels taken) found no weights loaded; nothing follows


class ProtocolError(ValueError):
    """A reply (or request) that is short, garbled, or does not fit the model."""


class WeightsNotLoaded(ProtocolError):
    """The board answered an INFER with ``Response.UNLOADED``: send its weight image first."""


@dataclass(frozen=True, eq=False)
class Reply:
    """A decoded reply: the class and the logits (n_classes,) int64."""
    cls: int
    logits: np.ndarray


def _check_count(name, value, lo, hi):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or \
            not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer from {lo} to {hi}, not {value!r}")
    return int(value)


def request_length(n_inputs):
    """Bytes in a request: the command byte and ``n_inputs`` pixels."""
    return 1 + _check_count("Input count", n_inputs, 1, 1 << 16)


def reply_length(n_classes):
    """Bytes in a reply: ``HEADER_BYTES + LOGIT_BYTES · n_classes``."""
    return HEADER_BYTES + LOGIT_BYTES * _check_count("Class count", n_classes, 2, MAX_CLASSES)


def divisor(clock_hz, baud=DEFAULT_BAUD):
    """Clock cycles per bit, ``round(clock_hz / baud)``; the baud error must stay under 2%."""
    if not clock_hz > 0 or not baud > 0:
        raise ValueError(f"Clock and baud rate must be positive, not {clock_hz!r} and {baud!r}")
    d = round(clock_hz / baud)
    if d < 4:
        raise ValueError(f"A {clock_hz / 1e6:g} MHz clock is too slow for {baud} baud: the UART "
                         f"needs at least 4 clock cycles per bit, this gives {clock_hz / baud:.2f}")
    error = abs(clock_hz / d - baud) / baud
    if error > 0.02:
        raise ValueError(f"A {clock_hz / 1e6:g} MHz clock gives {baud} baud only to within "
                         f"{100 * error:.1f}% (divisor {d}); at most 2% is reliable")
    return d


def encode_request(pixels, n_inputs, input_bits=8):
    """The request bytes for one sample: ``Command.INFER`` then the pixels.

    ``pixels`` (n_inputs,) integers in [0, 2^input_bits − 1].
    """
    n = request_length(n_inputs) - 1
    _check_count("Input bits", input_bits, 1, 8)
    x = np.asarray(pixels)
    if x.shape != (n,):
        raise ValueError(f"A request carries {n} pixels (shape ({n},)), not shape {x.shape}")
    if x.dtype.kind not in "iu":
        raise ValueError(f"Pixels must be integer codes, not {x.dtype}")
    hi = (1 << input_bits) - 1
    bad = np.flatnonzero((x < 0) | (x > hi))
    if len(bad):
        raise ValueError(f"Pixels must lie in [0, {hi}]; pixel {bad[0]} is {int(x[bad[0]])}")
    return bytes([Command.INFER]) + x.astype(np.uint8).tobytes()


def _request_body(data, command, n, what, body):
    """The bytes after the command byte of request ``data``, which must be ``n`` bytes long
    and start with ``command``."""
    data = bytes(data)
    if len(data) != n:
        raise ProtocolError(f"{what} is {n} bytes (command and {body}), not {len(data)}")
    if data[0] != command:
        raise ProtocolError(f"Unknown command byte 0x{data[0]:02x}; expected "
                            f"{command.name} (0x{command:02x})")
    return data[1:]


def decode_request(data, n_inputs):
    """The pixels (n_inputs,) int64 of a request; the board's side, for tests and models."""
    body = _request_body(data, Command.INFER, request_length(n_inputs), "A request",
                         f"{n_inputs} pixels")
    return np.frombuffer(body, dtype=np.uint8).astype(np.int64)


def encode_reply(cls, logits):
    """The reply bytes for a class and its logits; the board's side, for tests and models."""
    logits = np.asarray(logits, dtype=np.int64)
    reply_length(len(logits))
    _check_count("Class", cls, 0, len(logits) - 1)
    if logits.min() < -(1 << 31) or logits.max() >= 1 << 31:
        raise ValueError("Logits must fit in 32-bit two's complement")
    return bytes([Response.RESULT, int(cls)]) + logits.astype("<i4").tobytes()


def decode_reply(data, n_classes, *, logit_bits=MAX_LOGIT_BITS):
    """The :class:`Reply` in ``data`` (bytes from the board), checked against the model.

    Raises :class:`WeightsNotLoaded` when the board answered UNLOADED, and
    :class:`ProtocolError` when the reply is an error response, short or long, starts with an
    unknown byte, names a class out of range, carries logits wider than ``logit_bits``,
    or names a class that is not the first largest logit (a garbled byte).
    """
    n = reply_length(n_classes)
    _check_count("Logit bits", logit_bits, 2, MAX_LOGIT_BITS)
    data = bytes(data)
    if data[:1] == bytes([Response.ERROR]):
        raise ProtocolError("The board answered ERROR: it did not understand the command byte")
    if data[:1] == bytes([Response.UNLOADED]):
        raise WeightsNotLoaded("The board answered UNLOADED: its network's weights are not "
                               "loaded; send them with LOAD first")
    if data and data[0] != Response.RESULT:
        raise ProtocolError(f"The reply starts with 0x{data[0]:02x}, expected RESULT "
                            f"(0x{Response.RESULT:02x}); the line is garbled or out of step")
    if len(data) != n:
        what = "no bytes" if not data else f"{len(data)} bytes"
        raise ProtocolError(f"The reply is {what}, expected {n} (response, class and "
                            f"{n_classes} logits of {LOGIT_BYTES} bytes); a short reply means the "
                            f"board stopped answering or the baud rate is wrong")
    cls = data[1]
    logits = np.frombuffer(data[HEADER_BYTES:], dtype="<i4").astype(np.int64)
    if cls >= n_classes:
        raise ProtocolError(f"The reply names class {cls}, but the model has {n_classes} classes")
    lo, hi = -(1 << (logit_bits - 1)), (1 << (logit_bits - 1)) - 1
    bad = np.flatnonzero((logits < lo) | (logits > hi))
    if len(bad):
        raise ProtocolError(f"Logit {bad[0]} is {int(logits[bad[0]])}, outside the "
                            f"{logit_bits}-bit range [{lo}, {hi}] of the model; the reply is "
                            f"garbled")
    if cls != int(np.argmax(logits)):
        raise ProtocolError(f"The reply names class {cls}, but its largest logit is "
                            f"{int(np.argmax(logits))}; the reply is garbled")
    return Reply(cls, logits)


def transact(port, pixels, *, n_inputs, n_classes, input_bits=8, logit_bits=MAX_LOGIT_BITS):
    """One inference over a serial ``port`` (pyserial-like: ``write``, ``read(n)`` with a
    timeout); returns the :class:`Reply`.

    The reply's first byte is read alone, so that a one-byte answer (ERROR, UNLOADED) does not
    wait out the port's timeout for bytes that never come.
    """
    if hasattr(port, "reset_input_buffer"):
        port.reset_input_buffer()  # drop bytes of an earlier, abandoned exchange
    port.write(encode_request(pixels, n_inputs, input_bits))
    data = bytes(port.read(1))
    if data == bytes([Response.RESULT]):
        data += bytes(port.read(reply_length(n_classes) - 1))
    return decode_reply(data, n_classes, logit_bits=logit_bits)


# --- weight loading -------------------------------------------------------------------------

def load_length(weight_bytes):
    """Bytes in a LOAD request: the command byte and the ``weight_bytes`` of the image."""
    return 1 + _check_count("Weight image length", weight_bytes, 1, MAX_WEIGHT_BYTES)


def encode_load(image, weight_bytes):
    """The LOAD request for a weight image (bytes-like, exactly ``weight_bytes`` long)."""
    n = load_length(weight_bytes) - 1
    if not isinstance(image, (bytes, bytearray, memoryview)):
        raise TypeError(f"A weight image must be bytes, not {type(image).__name__}")
    image = bytes(image)
    if len(image) != n:
        raise ValueError(f"The model's weight image is {n} bytes, not {len(image)}")
    return bytes([Command.LOAD]) + image


def decode_load(data, weight_bytes):
    """The weight image (bytes) of a LOAD request; the board's side, for tests and models."""
    return _request_body(data, Command.LOAD, load_length(weight_bytes), "A LOAD request",
                         f"a {weight_bytes}-byte weight image")


def decode_loaded(data):
    """Check the board's answer to a LOAD (bytes from the board): exactly ``Response.LOADED``.

    Raises :class:`ProtocolError` when the answer is missing, is ERROR (the board's network
    keeps its weights in the bitstream), or is anything else.
    """
    data = bytes(data)
    if data == bytes([Response.LOADED]):
        return
    if not data:
        raise ProtocolError("The board did not answer the LOAD; a missing answer means the weight "
                            "image is shorter than the board's network expects, the board stopped "
                            "answering, or the baud rate is wrong")
    if data[:1] == bytes([Response.ERROR]):
        raise ProtocolError("The board answered ERROR to LOAD: its network keeps its weights in "
                            "the bitstream and takes no weight image")
    raise ProtocolError(f"The answer to LOAD is {data[:8].hex(' ')}, expected LOADED "
                        f"(0x{Response.LOADED:02x}) alone; the line is garbled or out of step")


def load_weights(port, image, *, weight_bytes, chunk_bytes=4096, progress=None):
    """Write the weight ``image`` to the board on ``port`` (pyserial-like) with LOAD, in writes of
    at most ``chunk_bytes``, and check its LOADED.

    ``progress``, if given, is called as ``progress(sent, total)`` with the image bytes written
    so far, after each write. The port's read timeout must cover what is still in the line's
    buffers after the last write.
    """
    request = encode_load(image, weight_bytes)
    _check_count("Chunk length", chunk_bytes, 1, MAX_WEIGHT_BYTES)
    if hasattr(port, "reset_input_buffer"):
        port.reset_input_buffer()
    port.write(request[:1])
    for start in range(1, len(request), chunk_bytes):
        end = min(start + chunk_bytes, len(request))
        port.write(request[start:end])
        if progress is not None:
            progress(end - 1, weight_bytes)
    decode_loaded(port.read(1))
