"""The host side: classify an image on a board over its UART, with the protocol of
:mod:`slimgen.sw.uart_protocol`.

An image is a PNG file (8×8 grayscale, or any larger square image, which is area-averaged down
to 8×8) or ``digits:<index>``, a sample of the digits test split. Pixels become the digits' 0..16
scale the way the digits were made: the fraction of ink in each of the 8×8 blocks, times 16,
rounded. Ink is the dark part of an image with a light background (as drawn on paper), else the
light part (as the digits are stored); ``invert`` overrides the guess.

Every model kind the flow builds (:data:`slimgen.models.MODEL_KINDS`: the MLP, the CNN, the
LSTM) sits on the board behind the same UART bridge and takes the same request: the image's
64 pixels in raster order (row by row; for the LSTM the 8 rows are its 8 steps of 8 pixels), each
as the model's integer input code ``clip(round(pixel / 16 / input_scale), 0, 2^input_bits − 1)``
(8 bits for the MLP and the CNN, 5 for the LSTM). A run folder's ``model.npz`` holds the
integer model (its network description and records), whose golden model gives the logits to
compare with the board's.

A network that keeps its weights in the UP5K's SPRAM (which the bitstream cannot initialise)
starts without them and answers UNLOADED. :func:`classify` then sends the run folder's
``weights.bin`` (its weight image, written by ``slimgen generate``) with LOAD, checks the board's
LOADED, and asks once more; a run without ``weights.bin`` never sends LOAD. A load takes ten bit
times a byte (4.3 s for 50 kB at 115200 baud); the port's timeouts are stretched by that much
while it runs.

The port is a device path (``/dev/ttyUSB1``) or any pyserial URL (``socket://host:port``,
``loop://``), or an already open pyserial-like object (``write``, ``read`` with a timeout).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slimgen.sw import uart_protocol as proto

__all__ = ["HostError", "Model", "Classification", "SIDE", "PIXEL_MAX",
           "MAX_BAUD", "WEIGHTS_FILE", "check_port", "check_baud", "load_png", "to_digit",
           "load_image", "load_weight_image", "load_model", "classify"]

#: Images travel as SIDE × SIDE pixels on the digits' 0..PIXEL_MAX scale.
SIDE, PIXEL_MAX = 8, 16
#: Fastest baud rate taken: the fastest USB UARTs (FTDI's FT2232H, on most FPGA boards) run at
#: 12 Mbaud.
MAX_BAUD = 12_000_000
#: pyserial URL schemes that connect to host:port over the network.
_NETWORK_SCHEMES = ("socket", "rfc2217")
#: The weight image of a run whose board takes its weights over the line, in the run folder.
WEIGHTS_FILE = "weights.bin"
#: A weight load is written in pieces of about this many seconds of line time (for progress,
#: and so that no single write outlasts the port's write timeout).
_CHUNK_SECONDS = 0.25


def check_port(port):
    """Refuse a network URL (``socket://``, ``rfc2217://``) without a host and a port number
    from 1 to 65535, which pyserial would meet with an unrelated error; other ports pass."""
    from urllib.parse import urlsplit
    scheme = port.split("://", 1)[0].lower() if "://" in port else None
    if scheme not in _NETWORK_SCHEMES:
        return
    parts = urlsplit(port)
    try:
        number = parts.port
    except ValueError:   # not a number, or above 65535
        number = None
    if not parts.hostname or not number:
        raise ValueError(f"A {scheme}:// URL needs host:port with a port number from 1 to 65535, "
                         f"such as {scheme}://127.0.0.1:7000, not {port!r}")


def check_baud(baud):
    """Refuse a baud rate that is not a whole number from 1 to :data:`MAX_BAUD`."""
    if isinstance(baud, bool) or not isinstance(baud, int) or not 1 <= baud <= MAX_BAUD:
        raise ValueError(f"Baud rate must be a whole number of bits per second from 1 to "
                         f"{MAX_BAUD:,}, not {baud!r}")


class HostError(RuntimeError):
    """Something between the host and the board failed: the port, the line, the reply."""


@dataclass(frozen=True)
class Model:
    """What the host must know of the network on the board."""
    n_inputs: int = SIDE * SIDE
    n_classes: int = 10
    input_bits: int = 8
    input_scale: float = 1.0 / PIXEL_MAX
    logit_bits: int = proto.MAX_LOGIT_BITS
    split_seed: int = 0
    golden: object = None  # the model kind's integer model when a run folder gave one
    kind: str = "mlp"      # the model kind (slimgen.models)
    weights: object = None       # the weight image (bytes) to LOAD when the board has none
    weights_path: object = None  # where it came from (named in messages)

    def codes(self, pixels):
        """0..16 pixels (64,) to the network's integer input codes."""
        from slimgen.sw.quantize import quantize_inputs
        return quantize_inputs(np.asarray(pixels) / PIXEL_MAX, self.input_scale, self.input_bits)


@dataclass(frozen=True, eq=False)
class Classification:
    """The board's answer for one image, and the golden model's when a run folder was given."""
    cls: int
    logits: np.ndarray
    pixels: np.ndarray               # (64,) 0..16
    codes: np.ndarray                # (n_inputs,) what went over the line
    label: object = None             # the true class of a digits:<index> image
    golden_logits: object = None

    @property
    def matches_golden(self):
        """True or False with a golden model, else None."""
        if self.golden_logits is None:
            return None
        return bool(np.array_equal(self.logits, self.golden_logits))


def load_png(path):
    """The grayscale image (h, w) float in [0, 1] in the PNG at ``path``."""
    import matplotlib.image as mpimg
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Image file {path} does not exist")
    try:
        img = np.asarray(mpimg.imread(path, format="png"), dtype=np.float64)
    except (OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"Image file {path} is not a readable PNG: {e}") from None
    if img.ndim == 3:
        if img.shape[2] == 4:  # composite over white: transparent means background paper
            img = img[..., :3] * img[..., 3:] + (1 - img[..., 3:])
        img = img[..., :3] @ np.array([0.299, 0.587, 0.114])  # luma
    if img.dtype.kind in "iu" or img.max() > 1:  # 16-bit PNGs read as integers
        img = img / np.iinfo(np.uint16).max
    return img


def _area_matrix(n, side):
    """R (side, n): row i averages the input pixels over [i·n/side, (i+1)·n/side)."""
    edges = np.arange(side + 1) * n / side
    R = np.zeros((side, n))
    for i in range(side):
        for j in range(int(np.floor(edges[i])), int(np.ceil(edges[i + 1]))):
            R[i, j] = min(j + 1, edges[i + 1]) - max(j, edges[i])
    return R / R.sum(axis=1, keepdims=True)


def to_digit(gray, *, invert=None, name="The image"):
    """A grayscale image (h, w) in [0, 1] as digits pixels (64,) int64 in 0..16.

    ``invert``: True when ink is dark (paper), False when ink is light; None guesses from the
    border, which is background: a light border means dark ink.
    """
    g = np.asarray(gray, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] != g.shape[1] or g.shape[0] < SIDE:
        shape = "×".join(str(v) for v in g.shape)
        raise ValueError(f"{name} is {shape} pixels; expected a square grayscale image of at "
                         f"least {SIDE}×{SIDE} (it is averaged down to {SIDE}×{SIDE})")
    if invert is None:
        border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
        invert = border.mean() > 0.5
    ink = 1 - g if invert else g
    R = _area_matrix(g.shape[0], SIDE)   # (8, n)
    small = R @ ink @ R.T                # (8, 8) ink fraction per block
    return np.clip(np.rint(small * PIXEL_MAX), 0, PIXEL_MAX).astype(np.int64).reshape(-1)


def load_image(image, *, split_seed=0, invert=None):
    """``(pixels (64,) int64 in 0..16, label or None)`` of a PNG path or ``digits:<index>``."""
    text = str(image)
    if text.startswith("digits:"):
        from slimgen.sw.data import load_digits
        x, y = load_digits(seed=split_seed).part("test")
        try:
            k = int(text[len("digits:"):])
        except ValueError:
            raise ValueError(f"A digits image is 'digits:<index>' with an integer index, not "
                             f"{text!r}") from None
        if not 0 <= k < len(x):
            raise ValueError(f"Digits test index must be from 0 to {len(x) - 1}, not {k}")
        return np.rint(x[k] * PIXEL_MAX).astype(np.int64), int(y[k])
    return to_digit(load_png(text), invert=invert, name=f"Image {text}"), None


def load_model(run):
    """The :class:`Model` of a run folder (its ``model.npz``, of any model kind, and its split
    seed), or the built-in digits MLP's interface when ``run`` is None."""
    if run is None:
        return Model()
    from slimgen.sw.artifact import ArtifactError, load_int_network
    path = Path(run) / "model.npz"
    if not Path(run).is_dir():
        raise FileNotFoundError(f"Run folder {run} does not exist (or is not a folder); give "
                                f"the folder of a run that went through quantize, or leave out "
                                f"--run")
    if not path.exists():
        raise FileNotFoundError(f"Run folder {run} has no model.npz: run 'slimgen flow --run "
                                f"{run}' first, or leave out --run")
    int_model, manifest = load_int_network(path)  # checks the whole file
    name = manifest.get("model", int_model.network.name)
    if int_model.logit_bits > proto.MAX_LOGIT_BITS:
        raise ArtifactError(f"Model file {path}: its logits are {int_model.logit_bits} bits "
                            f"wide, but the UART carries at most {proto.MAX_LOGIT_BITS}; no board "
                            f"serves this model")
    weights = load_weight_image(run)
    return Model(n_inputs=int_model.n_inputs, n_classes=int_model.n_classes,
                 input_bits=int_model.input_bits, input_scale=int_model.input_scale,
                 logit_bits=int_model.logit_bits, split_seed=manifest.get("split_seed", 0),
                 golden=int_model, kind=name, weights=weights,
                 weights_path=None if weights is None else Path(run) / WEIGHTS_FILE)


def load_weight_image(run):
    """The weight image (bytes) in the run folder's ``weights.bin``, or None when it has none.

    When the run's ``plan.json`` records the network's ``weight_bytes``, the file must be that
    long; a file of another length (left by another build) is an ``ArtifactError``.
    """
    import json
    from slimgen.sw.artifact import ArtifactError
    path = Path(run) / WEIGHTS_FILE
    try:
        image = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ArtifactError(f"Weight image {path} cannot be read: {e.strerror or e}") from None
    redo = f"run 'slimgen generate --run {run}' again"
    if not 1 <= len(image) <= proto.MAX_WEIGHT_BYTES:
        raise ArtifactError(f"Weight image {path} is {len(image):,} bytes; a weight image is 1 to "
                            f"{proto.MAX_WEIGHT_BYTES:,} bytes: {redo}")
    plan_path = Path(run) / "plan.json"
    try:
        plan = json.loads(plan_path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return image
    except (OSError, UnicodeDecodeError, ValueError):
        raise ArtifactError(f"{plan_path} is not readable JSON, so the length of {path} cannot "
                            f"be checked: {redo}") from None
    expected = plan.get("weight_bytes") if isinstance(plan, dict) else None
    if expected is None:
        return image
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 1:
        raise ArtifactError(f"{plan_path} gives weight_bytes {expected!r}, not a positive "
                            f"integer: {redo}")
    if len(image) != expected:
        raise ArtifactError(f"Weight image {path} is {len(image):,} bytes, but the network of "
                            f"{plan_path} takes {expected:,}: {redo}")
    return image


class _CountingPort:
    """Passes ``write``/``read`` through to a port and remembers what was read since the last
    write (the reply so far)."""

    def __init__(self, port):
        self.port, self.received = port, None  # None before the first read

    def reset_input_buffer(self):
        if hasattr(self.port, "reset_input_buffer"):
            self.port.reset_input_buffer()

    def write(self, data):
        self.received = None
        return self.port.write(data)

    def read(self, n):
        data = self.port.read(n)
        self.received = (self.received or b"") + bytes(data)
        return data


def _open(port, baud, timeout):
    try:
        import serial
    except ImportError:
        raise HostError(f"Cannot open serial port {port}: pyserial is not installed; install "
                        f"it with pip install 'slimgen[host]'") from None
    try:
        return serial.serial_for_url(port, baudrate=baud, timeout=timeout, write_timeout=timeout)
    except (serial.SerialException, ValueError, OSError) as e:
        why = str(e)
        if "No such file" in why:
            why = "no such device (is the board plugged in, and is this its UART? " \
                  "see 'ls /dev/ttyUSB* /dev/ttyACM*')"
        elif "Inappropriate ioctl" in why:
            why = "not a serial port (it takes no baud rate); give the board's UART, see " \
                  "'ls /dev/ttyUSB* /dev/ttyACM*'"
        elif "Permission denied" in why or "[Errno 13]" in why:
            why = "permission denied (add yourself to the 'dialout' group)"
        raise HostError(f"Cannot open serial port {port}: {why}") from None


def classify(port, image, *, run=None, model=None, timeout=2.0, baud=proto.DEFAULT_BAUD,
             invert=None, progress=None):
    """Send ``image`` (a PNG path or ``digits:<index>``) to the board on ``port`` and return its
    :class:`Classification`.

    ``run``: a run folder whose ``model.npz`` gives the model's interface and the golden logits
    to compare against (and the split seed of ``digits:<index>``), and whose ``weights.bin``, if
    any, is loaded into a board that answers UNLOADED; ``model``: a :class:`Model` instead.
    ``timeout``: seconds to wait for the reply. ``progress``: called as ``progress(sent, total)``
    while a weight image is sent. A bad ``baud`` (see :data:`MAX_BAUD`) or network URL is a
    ``ValueError`` before anything is opened.
    """
    check_baud(baud)
    if isinstance(port, (str, Path)):
        check_port(str(port))
    model = model or load_model(run)
    pixels, label = load_image(image, split_seed=model.split_seed, invert=invert)
    if pixels.size != model.n_inputs:
        raise ValueError(f"The model takes {model.n_inputs} inputs, but an image gives "
                         f"{pixels.size} ({SIDE}×{SIDE} pixels)")
    codes = model.codes(pixels)
    own = isinstance(port, (str, Path))
    name = str(port) if own else getattr(port, "port", None) or "the port"
    handle = _open(str(port), baud, timeout) if own else port
    line = _Line(handle, name, timeout, baud)
    try:
        try:
            reply = line.infer(codes, model)
        except proto.WeightsNotLoaded:
            if model.weights is None:
                where = f"run folder {run} has no {WEIGHTS_FILE}" if run is not None else \
                    "no run folder was given (--run)"
                raise HostError(f"The board on {name} answered UNLOADED: its network keeps its "
                                f"weights in SPRAM and they have not been sent, but {where}; "
                                f"give the run folder its bitstream was built from") from None
            line.load(model, progress)
            try:
                reply = line.infer(codes, model)
            except proto.WeightsNotLoaded:
                raise HostError(f"The board on {name} answered UNLOADED again right after it "
                                f"acknowledged the weight image; it may have been reset in "
                                f"between, try again") from None
    except OSError as e:  # serial.SerialException is an OSError; also a write timeout
        raise HostError(f"Serial port {name} failed: {e}") from None
    finally:
        if own:
            handle.close()
    golden = model.golden(codes[None, :])[0] if model.golden is not None else None
    return Classification(reply.cls, reply.logits, pixels, codes, label, golden)


class _Line:
    """The exchanges of :func:`classify` on an open port, their failures as :class:`HostError`."""

    def __init__(self, handle, name, timeout, baud):
        self.handle, self.port = handle, _CountingPort(handle)
        self.name, self.timeout, self.baud = name, timeout, baud

    def infer(self, codes, model):
        """The board's :class:`~slimgen.sw.uart_protocol.Reply` for ``codes``; lets
        :class:`~slimgen.sw.uart_protocol.WeightsNotLoaded` through."""
        try:
            return proto.transact(self.port, codes, n_inputs=model.n_inputs,
                                  n_classes=model.n_classes, input_bits=model.input_bits,
                                  logit_bits=model.logit_bits)
        except proto.WeightsNotLoaded:
            raise
        except proto.ProtocolError as e:
            expected = proto.reply_length(model.n_classes)
            data = self.port.received
            if data is not None and len(data) < expected and \
                    data[:1] in (b"", bytes([proto.Response.RESULT])):
                got = "nothing" if not data else f"{len(data)} of {expected} bytes"
                raise HostError(f"Timed out after {self.timeout:g} s waiting for the board's "
                                f"reply on {self.name}: got {got}. Is the board programmed with "
                                f"this network's bitstream, and is this its UART port at "
                                f"{self.baud} baud?") from None
            raise HostError(f"Garbled reply from the board on {self.name}: {e}") from None

    def load(self, model, progress):
        """Send ``model.weights`` with LOAD and check LOADED, the port's timeouts stretched by
        the time the image takes on the line."""
        image = model.weights
        seconds = 10 * (1 + len(image)) / self.baud   # 8N1: ten bit times a byte
        chunk = max(1, int(_CHUNK_SECONDS * self.baud / 10))
        saved = {a: getattr(self.handle, a) for a in ("timeout", "write_timeout")
                 if hasattr(self.handle, a)}
        what = f"the {len(image):,}-byte weight image" + \
            (f" {model.weights_path}" if model.weights_path else "")
        try:
            for a in saved:
                setattr(self.handle, a, self.timeout + seconds)
            proto.load_weights(self.port, image, weight_bytes=len(image), chunk_bytes=chunk,
                               progress=progress)
        except proto.ProtocolError as e:
            if not self.port.received:
                raise HostError(f"Timed out waiting for the board on {self.name} to acknowledge "
                                f"{what} ({seconds:.1f} s on the line at {self.baud} baud, "
                                f"{self.timeout:g} s more allowed): got nothing. Is it the image "
                                f"of the network this board was programmed with?") from None
            raise HostError(f"Garbled answer to {what} from the board on {self.name}: "
                            f"{e}") from None
        finally:
            for a, value in saved.items():
                setattr(self.handle, a, value)
