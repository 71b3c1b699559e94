"""Host side of the UART protocol: image loading, the exchange over a fake port, messages."""

import argparse

import numpy as np
import pytest

from slimgen import host_cli
from slimgen.host import HostError, Model, classify, load_image, to_digit
from slimgen.sw import uart_protocol as proto

pytest.importorskip("serial")
mpimg = pytest.importorskip("matplotlib.image")


class FakeBoard:
    """A pyserial-like port; ``answer(request_bytes) -> reply_bytes`` plays the board."""

    port = "fake0"

    def __init__(self, answer):
        self.answer, self.pending, self.requests = answer, b"", []

    def reset_input_buffer(self):
        self.pending = b""

    def write(self, data):
        self.requests.append(bytes(data))
        self.pending += self.answer(bytes(data))
        return len(data)

    def read(self, n):
        out, self.pending = self.pending[:n], self.pending[n:]
        return out


def _golden(logits):
    """A board that answers every request with these logits."""
    logits = np.asarray(logits)
    return lambda req: proto.encode_reply(int(np.argmax(logits)), logits)


LOGITS = [-5, 3, 40, -1, 0, 7, 2, 2, -9, 11]


def test_digits_image_over_a_fake_port():
    board = FakeBoard(_golden(LOGITS))
    c = classify(board, "digits:3")
    assert c.cls == 2 and c.logits.tolist() == LOGITS and c.matches_golden is None
    from slimgen.sw.data import load_digits
    x, y = load_digits(seed=0).part("test")
    assert c.label == y[3]
    assert c.codes.tolist() == np.rint(x[3] * 16).astype(int).tolist()
    assert board.requests == [proto.encode_request(c.codes, 64)]


def test_png_round_trip(tmp_path):
    from slimgen.sw.data import load_digits
    x, _ = load_digits(seed=0).part("test")
    pixels = np.rint(x[7] * 16).reshape(8, 8)
    mpimg.imsave(tmp_path / "d.png", pixels, cmap="gray", vmin=0, vmax=16)
    assert load_image(tmp_path / "d.png")[0].tolist() == pixels.reshape(-1).tolist()
    # The same digit drawn dark on white paper at 32×32: same pixels.
    big = np.kron(pixels, np.ones((4, 4)))
    mpimg.imsave(tmp_path / "paper.png", 16 - big, cmap="gray", vmin=0, vmax=16)
    assert load_image(tmp_path / "paper.png")[0].tolist() == pixels.reshape(-1).tolist()


def test_binary_image_counts_ink_like_the_digits():
    img = np.zeros((32, 32))
    img[:4, :4] = 1          # a full block: 16
    img[4:8, :2] = 1         # half a block: 8
    img[0, 31] = 1           # one pixel of 16: 1
    d = to_digit(img, invert=False).reshape(8, 8)
    assert d[0, 0] == 16 and d[1, 0] == 8 and d[0, 7] == 1 and d.sum() == 25


def test_area_average_of_odd_sizes():
    assert to_digit(np.ones((13, 13)), invert=False).tolist() == [16] * 64
    assert to_digit(np.zeros((9, 9)), invert=False).tolist() == [0] * 64


def test_image_errors(tmp_path):
    with pytest.raises(ValueError, match=r"^Image x.png is 5×7 pixels; expected a square "
                                         r"grayscale image of at least 8×8 \(it is averaged "
                                         r"down to 8×8\)$"):
        to_digit(np.zeros((5, 7)), name="Image x.png")
    with pytest.raises(ValueError, match=r"^The image is 4×4 pixels"):
        to_digit(np.zeros((4, 4)))
    with pytest.raises(FileNotFoundError, match=r"^Image file .*nope.png does not exist$"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"^Image file .*bad.png is not a readable PNG: "):
        load_image(tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"^Digits test index must be from 0 to 359, not 360$"):
        load_image("digits:360")
    with pytest.raises(ValueError, match=r"^A digits image is 'digits:<index>' with an integer "
                                         r"index, not 'digits:x'$"):
        load_image("digits:x")


def test_timeout_message():
    with pytest.raises(HostError, match=r"^Timed out after 2 s waiting for the board's reply on "
                                        r"fake0: got nothing\. Is the board programmed with "
                                        r"this network's bitstream, and is this its UART port "
                                        r"at 115200 baud\?$"):
        classify(FakeBoard(lambda req: b""), "digits:0")
    with pytest.raises(HostError, match=r"got 10 of 42 bytes"):
        classify(FakeBoard(lambda req: _golden(LOGITS)(req)[:10]), "digits:0")


def test_garbled_replies():
    good = _golden(LOGITS)
    with pytest.raises(HostError, match=r"^Garbled reply from the board on fake0: The reply "
                                        r"starts with 0x00, expected RESULT \(0x52\); the line "
                                        r"is garbled or out of step$"):
        classify(FakeBoard(lambda req: b"\0" + good(req)[1:]), "digits:0")
    with pytest.raises(HostError, match=r"The reply names class 3, but its largest logit is 2"):
        classify(FakeBoard(lambda req: good(req)[:1] + b"\3" + good(req)[2:]), "digits:0")
    with pytest.raises(HostError, match=r"^Garbled reply from the board on fake0: The board "
                                        r"answered ERROR"):
        classify(FakeBoard(lambda req: bytes([proto.Response.ERROR])), "digits:0")


def test_stale_bytes_are_dropped():
    board = FakeBoard(_golden(LOGITS))
    board.pending = b"junk from an abandoned exchange"
    assert classify(board, "digits:0").cls == 2


def test_no_such_port():
    with pytest.raises(HostError, match=r"^Cannot open serial port /dev/ttyNOPE: no such device "
                                        r"\(is the board plugged in, and is this its UART\? see "
                                        r"'ls /dev/ttyUSB\* /dev/ttyACM\*'\)$"):
        classify("/dev/ttyNOPE", "digits:0")


def test_golden_comparison(tmp_path):
    from slimgen.sw.network import preset
    from slimgen.sw.nn import build_model
    from slimgen.sw.quantize import quantize_network
    net = preset("mlp", sizes=(64, 8, 10))
    model = build_model(net.float_spec()[0], np.random.default_rng(0))
    q = quantize_network(net, model, np.random.default_rng(1).random((50, 64)),
                         input_scale=1 / 16)
    m = Model(logit_bits=q.logit_bits, golden=q)
    honest = FakeBoard(lambda req: proto.encode_reply(
        *(lambda l: (int(np.argmax(l)), l))(q(proto.decode_request(req, 64)[None])[0])))
    assert classify(honest, "digits:5", model=m).matches_golden is True
    wrong = q(np.zeros((1, 64), dtype=np.int64))[0] + 1
    liar = FakeBoard(lambda req: proto.encode_reply(int(np.argmax(wrong)), wrong))
    assert classify(liar, "digits:5", model=m).matches_golden is False


def _cli(argv):
    p = argparse.ArgumentParser(prog="slimgen")
    host_cli.add_parser(p.add_subparsers(dest="command"))
    return p.parse_args(argv)


def test_cli_messages(capsys, tmp_path):
    args = _cli(["classify", "--port", "/dev/ttyNOPE", "digits:0"])
    assert args.func(args) == 1
    assert capsys.readouterr().err.startswith("slimgen classify: error: Cannot open serial port "
                                              "/dev/ttyNOPE: no such device")
    args = _cli(["classify", "--port", "/dev/ttyNOPE", "digits:999"])
    assert args.func(args) == 2
    assert capsys.readouterr().err == ("slimgen classify: error: Digits test index must be from "
                                       "0 to 359, not 999\n")
    args = _cli(["classify", "--port", "x", "--run", str(tmp_path), "digits:0"])
    assert args.func(args) == 2
    assert "has no model.npz: run 'slimgen flow --run" in capsys.readouterr().err


def test_cli_prints_class_and_logits(capsys, monkeypatch):
    import serial
    board = FakeBoard(_golden(LOGITS))
    monkeypatch.setattr(serial, "serial_for_url", lambda *a, **k: _Closing(board))
    args = _cli(["classify", "--port", "/dev/ttyUSB1", "digits:3"])
    assert args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("class 2 (true class ")
    assert out[1] == "logits -5 3 40 -1 0 7 2 2 -9 11"


class _Closing:
    def __init__(self, board):
        self.board = board

    def __getattr__(self, name):
        return getattr(self.board, name)

    def close(self):
        pass


@pytest.fixture(scope="module", params=["mlp", "cnn", "lstm"])
def kind_run(request, tmp_path_factory):
    """A run folder holding the model.npz of one model kind (an untrained float model quantized
    the way the flow does it), and that integer model."""
    from slimgen.sim.testing import untrained_int_run
    root = tmp_path_factory.mktemp(request.param)
    int_model, _ = untrained_int_run(request.param, root)
    return request.param, root, int_model


def _board_of(int_model):
    """A board that answers with ``int_model``'s logits for the codes it receives."""
    def answer(req):
        logits = int_model(proto.decode_request(req, int_model.n_inputs)[None])[0]
        return proto.encode_reply(int(np.argmax(logits)), logits)
    return answer


def test_every_model_kind_is_classified(kind_run):
    """The codes on the line are those the flow's verify stage ran through the hardware (the
    digits' vector view, raster order, at the model's input scale and width), and the golden
    model of every kind is the one in the run folder."""
    from slimgen.sw.data import load_dataset
    from slimgen.sw.quantize import quantize_inputs
    name, root, q = kind_run
    x, y = load_dataset("digits", view="vector", seed=0).part("test")
    board = FakeBoard(_board_of(q))
    c = classify(board, "digits:4", run=root)
    codes = quantize_inputs(x[4:5], q.input_scale, q.input_bits)[0]
    assert board.requests == [proto.encode_request(codes, 64, q.input_bits)]
    assert c.codes.tolist() == codes.tolist() and c.label == y[4]
    assert c.golden_logits.tolist() == q(codes[None])[0].tolist() and c.matches_golden is True
    wrong = q(codes[None])[0] + np.arange(10)
    liar = FakeBoard(lambda req: proto.encode_reply(int(np.argmax(wrong)), wrong))
    assert classify(liar, "digits:4", run=root).matches_golden is False


def test_cli_classifies_every_model_kind(kind_run, capsys, monkeypatch):
    import serial
    name, root, q = kind_run
    monkeypatch.setattr(serial, "serial_for_url", lambda *a, **k: _Closing(FakeBoard(_board_of(q))))
    args = _cli(["classify", "--port", "/dev/ttyUSB1", "--run", str(root), "digits:4"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.splitlines()[-1] == "golden model: equal"


def _usage_error(argv, capsys):
    """The last stderr line of an argparse usage error (exit status 2)."""
    with pytest.raises(SystemExit) as e:
        _cli(argv)
    assert e.value.code == 2
    return capsys.readouterr().err.splitlines()[-1]


BAUD = ("argument --baud: must be a whole number of bits per second from 1 to 12,000,000 (the "
        "fastest USB UARTs), such as 9600, 19200, 38400, 57600, 115200 (the rate slimgen's "
        "boards use) or 230400, not ")
SOCKET = ("argument --port: a {0}:// URL needs host:port with a port number from 1 to 65535, "
          "such as {0}://127.0.0.1:7000, not {1!r}")


@pytest.mark.parametrize("option, value, message", [
    ("--baud", "0", BAUD + "'0'"),
    ("--baud", "-5", BAUD + "'-5'"),
    ("--baud", "9600.5", BAUD + "'9600.5'"),
    ("--baud", "12000001", BAUD + "'12000001'"),
    ("--baud", "99999999999999999999", BAUD + "'99999999999999999999'"),
    ("--port", "socket://nonsense", SOCKET.format("socket", "socket://nonsense")),
    ("--port", "socket://:7000", SOCKET.format("socket", "socket://:7000")),
    ("--port", "socket://localhost:notaport", SOCKET.format("socket",
                                                            "socket://localhost:notaport")),
    ("--port", "socket://localhost:99999", SOCKET.format("socket", "socket://localhost:99999")),
    ("--port", "socket://localhost:0", SOCKET.format("socket", "socket://localhost:0")),
    ("--port", "rfc2217://board", SOCKET.format("rfc2217", "rfc2217://board")),
    ("--run", "", "argument --run: must name a run folder (e.g. runs/default), not ''"),
    ("--timeout", "0", "argument --timeout: must be a positive number of seconds such as 2, "
                       "not '0'"),
    ("--timeout", "-1", "argument --timeout: must be a positive number of seconds such as 2, "
                        "not '-1'"),
    ("--timeout", "nan", "argument --timeout: must be a positive number of seconds such as 2, "
                         "not 'nan'"),
    ("--timeout", "inf", "argument --timeout: must be a positive number of seconds such as 2, "
                         "not 'inf'"),
    ("--port", "", "argument --port: must name a serial port such as /dev/ttyUSB1, COM3 or "
                   "socket://127.0.0.1:7000, not ''"),
])
def test_cli_option_errors(option, value, message, capsys):
    assert _usage_error(["classify", "--port", "/dev/ttyUSB1", option, value, "digits:0"],
                        capsys) == f"slimgen classify: error: {message}"


def test_cli_image_errors(capsys, tmp_path):
    digits = ("must be a PNG file or digits:<index>, an index from 0 into the digits test "
              "split, not ")
    for image in ("digits:abc", "digits:", "digits:-1", "digits:1.5"):
        assert _usage_error(["classify", "--port", "x", image], capsys) == \
            f"slimgen classify: error: argument image: {digits}{image!r}"
    assert _usage_error(["classify", "--port", "x", str(tmp_path / "nope.png")], capsys) == \
        f"slimgen classify: error: argument image: Image file {tmp_path / 'nope.png'} does not " \
        f"exist"
    assert _usage_error(["classify", "--port", "x", str(tmp_path)], capsys) == \
        f"slimgen classify: error: argument image: {tmp_path} is a folder, not a PNG file"


def test_cli_run_folder_errors(capsys, tmp_path):
    missing = tmp_path / "nope"
    args = _cli(["classify", "--port", "x", "--run", str(missing), "digits:0"])
    assert args.func(args) == 2
    assert capsys.readouterr().err == (f"slimgen classify: error: Run folder {missing} does not "
                                       f"exist (or is not a folder); give the folder of a run "
                                       f"that went through quantize, or leave out --run\n")
    from slimgen.sw.artifact import save_float_model
    from slimgen.sw.nn import build_model, mlp_spec
    save_float_model(tmp_path / "model.npz", build_model(mlp_spec((64, 10)),
                                                         np.random.default_rng(0)),
                     dataset="digits", split_seed=0)
    args = _cli(["classify", "--port", "x", "--run", str(tmp_path), "digits:0"])
    assert args.func(args) == 1
    assert capsys.readouterr().err == (f"slimgen classify: error: Model file "
                                       f"{tmp_path / 'model.npz'} holds a model of kind 'float', "
                                       f"expected kind 'int' ('float' comes from train, 'int' "
                                       f"from quantize)\n")
    (tmp_path / "model.npz").write_bytes(b"junk")
    args = _cli(["classify", "--port", "x", "--run", str(tmp_path), "digits:0"])
    assert args.func(args) == 1
    assert capsys.readouterr().err.startswith(f"slimgen classify: error: Model file "
                                              f"{tmp_path / 'model.npz'} is damaged or truncated")


def test_cli_png_errors(capsys, tmp_path):
    mpimg.imsave(tmp_path / "wide.png", np.zeros((8, 12)), cmap="gray")
    (tmp_path / "text.png").write_text("hello")
    for name, why in (("wide.png", "is 8×12 pixels; expected a square grayscale image of at "
                                   "least 8×8 (it is averaged down to 8×8)"),
                      ("text.png", "is not a readable PNG: not a PNG file")):
        args = _cli(["classify", "--port", "/dev/ttyNOPE", str(tmp_path / name)])
        assert args.func(args) == 2
        what = "Image" if name == "wide.png" else "Image file"
        assert capsys.readouterr().err == \
            f"slimgen classify: error: {what} {tmp_path / name} {why}\n"


class _ClosedStdout:
    """stdout whose reader has gone: every write raises BrokenPipeError."""

    def __init__(self, fd):
        self.fd = fd

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        pass

    def fileno(self):
        return self.fd


def test_cli_closed_stdout_is_quiet(capsys, monkeypatch, tmp_path):
    import serial
    monkeypatch.setattr(serial, "serial_for_url",
                        lambda *a, **k: _Closing(FakeBoard(_golden(LOGITS))))
    with open(tmp_path / "out", "wb") as f:
        monkeypatch.setattr("sys.stdout", _ClosedStdout(f.fileno()))
        args = _cli(["classify", "--port", "/dev/ttyUSB1", "digits:3"])
        assert args.func(args) == 141
    assert capsys.readouterr().err == ""


def test_without_pyserial(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_serial(name, *args, **kwargs):
        if name == "serial":
            raise ModuleNotFoundError("No module named 'serial'", name="serial")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_serial)
    with pytest.raises(HostError, match=r"^Cannot open serial port /dev/ttyUSB1: pyserial is not "
                                        r"installed; install it with pip install "
                                        r"'slimgen\[host\]'$"):
        classify("/dev/ttyUSB1", "digits:0")


def test_cli_interrupted(capsys, monkeypatch):
    import serial

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(serial, "serial_for_url", interrupted)
    args = _cli(["classify", "--port", "/dev/ttyUSB1", "digits:3"])
    assert args.func(args) == 130
    assert capsys.readouterr().err == "slimgen classify: interrupted\n"


def test_not_a_serial_port(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(HostError, match=rf"^Cannot open serial port {tmp_path / 'file'}: not a "
                                        rf"serial port \(it takes no baud rate\); give the "
                                        rf"board's UART, see 'ls /dev/ttyUSB\* /dev/ttyACM\*'$"):
        classify(str(tmp_path / "file"), "digits:0")


def test_cli_run_file_is_a_usage_error(capsys, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert _usage_error(["classify", "--port", "x", "--run", str(tmp_path / "config.json"),
                         "digits:0"], capsys) == \
        f"slimgen classify: error: argument --run: {tmp_path / 'config.json'} is a file, not a " \
        f"run folder; give the run folder itself, such as {tmp_path}"


@pytest.mark.parametrize("port", ["socket://127.0.0.1:7000",
                                  "socket://board.local:7000?logging=debug",
                                  "rfc2217://[::1]:2217", "loop://", "/dev/ttyUSB1", "COM3"])
def test_cli_good_ports(port):
    assert _cli(["classify", "--port", port, "--baud", "12000000", "digits:0"]).port == port


def test_classify_checks_port_and_baud():
    """The Python API refuses what the CLI refuses, before anything is opened."""
    with pytest.raises(ValueError, match=r"^A socket:// URL needs host:port with a port number "
                                         r"from 1 to 65535, such as socket://127.0.0.1:7000, "
                                         r"not 'socket://nonsense'$"):
        classify("socket://nonsense", "digits:0")
    with pytest.raises(ValueError, match=r"^Baud rate must be a whole number of bits per second "
                                         r"from 1 to 12,000,000, not 99999999999999999999$"):
        classify("loop://", "digits:0", baud=99999999999999999999)
