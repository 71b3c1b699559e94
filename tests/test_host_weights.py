"""Host side of run-time weight loading: a board that keeps its weights in SPRAM answers
UNLOADED until the run folder's weights.bin is sent with LOAD; over a fake port, with messages."""

import argparse
import json

import numpy as np
import pytest

from slimgen import host_cli
from slimgen.host import WEIGHTS_FILE, HostError, classify, load_model
from slimgen.sw import uart_protocol as proto
from slimgen.sw.artifact import ArtifactError

pytest.importorskip("serial")

from spram_board import SpramBoard  # noqa: E402



@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """A run folder with the model.npz of the flow's MLP, and the model."""
    from slimgen.sim.testing import untrained_int_run
    root = tmp_path_factory.mktemp("mlp")
    int_model, _ = untrained_int_run("mlp", root)
    return root, int_model


@pytest.fixture
def spram_run(mlp_run, tmp_path):
    """A copy of the run folder with a weights.bin (random bytes: the fake board only compares
    them), and that image."""
    import shutil
    root, q = mlp_run
    run = tmp_path / "run"
    shutil.copytree(root, run)
    image = bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8))
    (run / WEIGHTS_FILE).write_bytes(image)
    return run, q, image


def test_unloaded_board_gets_the_weights_once(spram_run):
    run, q, image = spram_run
    board = SpramBoard(q, image)
    progress = []
    c = classify(board, "digits:4", run=run, baud=9600,
                 progress=lambda sent, total: progress.append((sent, total)))
    assert c.matches_golden is True
    request = proto.encode_request(c.codes, 64, q.input_bits)
    # INFER (answered UNLOADED), LOAD in pieces of a quarter second of line (240 bytes at 9600
    # baud), INFER again.
    assert board.writes[0] == request and board.writes[-1] == request
    assert b"".join(board.writes[1:-1]) == proto.encode_load(image, len(image))
    assert [len(w) for w in board.writes[1:-1]] == [1] + [240] * 20 + [200]
    assert progress == [(min(240 * k, 5000), 5000) for k in range(1, 22)]
    # The port's timeouts cover the load (5001 bytes at 9600 baud: 5.21 s) while it runs.
    assert board.timeouts_seen == {(2.0, 2.0), (2.0 + 50010 / 9600, 2.0 + 50010 / 9600)}
    assert (board.timeout, board.write_timeout) == (2.0, 2.0)
    # A loaded board is not loaded again.
    board.writes.clear()
    assert classify(board, "digits:5", run=run).matches_golden is True
    assert len(board.writes) == 1 and board.loads == []


def test_a_run_without_weights_never_loads(mlp_run):
    root, q = mlp_run
    board = SpramBoard(q, b"\x01\x02")
    with pytest.raises(HostError, match=rf"^The board on fake0 answered UNLOADED: its network "
                                        rf"keeps its weights in SPRAM and they have not been "
                                        rf"sent, but run folder {root} has no weights\.bin; give "
                                        rf"the run folder its bitstream was built from$"):
        classify(board, "digits:0", run=root)
    assert board.loads == [] and len(board.writes) == 1
    with pytest.raises(HostError, match=r"but no run folder was given \(--run\); give the run "
                                        r"folder its bitstream was built from$"):
        classify(board, "digits:0")
    assert board.loads == []


def test_weight_image_length_is_checked_before_sending(spram_run):
    run, q, image = spram_run
    (run / "plan.json").write_text(json.dumps({"weight_bytes": len(image)}))
    assert load_model(run).weights == image
    (run / "plan.json").write_text(json.dumps({"weight_bytes": len(image) + 2}))
    board = SpramBoard(q, image)
    with pytest.raises(ArtifactError, match=rf"^Weight image {run / WEIGHTS_FILE} is 5,000 "
                                            rf"bytes, but the network of {run / 'plan.json'} "
                                            rf"takes 5,002: run 'slimgen generate --run {run}' "
                                            rf"again$"):
        classify(board, "digits:0", run=run)
    assert board.writes == []
    (run / "plan.json").write_text(json.dumps({"weight_bytes": "many"}))
    with pytest.raises(ArtifactError, match=r"plan\.json gives weight_bytes 'many', not a "
                                            r"positive integer"):
        load_model(run)
    (run / "plan.json").write_text("{")
    with pytest.raises(ArtifactError, match=r"plan\.json is not readable JSON, so the length of "
                                            r".*weights\.bin cannot be checked"):
        load_model(run)
    (run / "plan.json").unlink()
    (run / WEIGHTS_FILE).write_bytes(b"")
    with pytest.raises(ArtifactError, match=r"weights\.bin is 0 bytes; a weight image is 1 to "
                                            r"16,777,216 bytes: run 'slimgen generate"):
        load_model(run)


@pytest.mark.parametrize("board_options, message", [
    ({"answer_load": b""}, r"^Timed out waiting for the board on fake0 to acknowledge the "
                           r"5,000-byte weight image .*weights\.bin \(0\.4 s on the line at "
                           r"115200 baud, 2 s more allowed\): got nothing\. Is it the image of "
                           r"the network this board was programmed with\?$"),
    ({"answer_load": b"E"}, r"^Garbled answer to the 5,000-byte weight image .*weights\.bin from "
                            r"the board on fake0: The board answered ERROR to LOAD: its network "
                            r"keeps its weights in the bitstream and takes no weight image$"),
    ({"forget": True}, r"^The board on fake0 answered UNLOADED again right after it acknowledged "
                       r"the weight image; it may have been reset in between, try again$"),
])
def test_failed_loads(spram_run, board_options, message):
    run, q, image = spram_run
    board = SpramBoard(q, image, **board_options)
    with pytest.raises(HostError, match=message):
        classify(board, "digits:0", run=run)
    assert len(board.loads) == 1   # one LOAD, never a second


def test_a_short_image_times_out(spram_run):
    """A weights.bin shorter than the board's image (no plan to check it against): the board
    waits for the rest and never answers."""
    run, q, image = spram_run
    (run / WEIGHTS_FILE).write_bytes(image[:-1])
    with pytest.raises(HostError, match=r"^Timed out waiting for the board on fake0 to "
                                        r"acknowledge the 4,999-byte weight image"):
        classify(SpramBoard(q, image), "digits:0", run=run)


def _cli(argv):
    p = argparse.ArgumentParser(prog="slimgen")
    host_cli.add_parser(p.add_subparsers(dest="command"))
    return p.parse_args(argv)


class _Closing:
    def __init__(self, board):
        self.board = board

    def __getattr__(self, name):
        return getattr(self.board, name)

    def __setattr__(self, name, value):
        if name == "board":
            object.__setattr__(self, name, value)
        else:
            setattr(self.board, name, value)

    def close(self):
        pass


def test_cli_shows_the_load(spram_run, capsys, monkeypatch):
    import serial
    run, q, image = spram_run
    board = SpramBoard(q, image)
    monkeypatch.setattr(serial, "serial_for_url", lambda *a, **k: _Closing(board))
    args = _cli(["classify", "--port", "/dev/ttyUSB1", "--run", str(run), "digits:4"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "golden model: equal"
    assert captured.err.splitlines() == [
        "slimgen classify: loading the board's weights: 5,000 bytes, about 0.4 s at 115200 baud",
        "slimgen classify: loading the board's weights: 5,000 bytes sent"]
    # Loaded: the next image goes straight through, quietly.
    args = _cli(["classify", "--port", "/dev/ttyUSB1", "--run", str(run), "digits:5"])
    assert args.func(args) == 0 and capsys.readouterr().err == ""


def test_cli_load_errors_are_one_line(spram_run, capsys, monkeypatch):
    import serial
    run, q, image = spram_run
    board = SpramBoard(q, image, answer_load=b"")
    monkeypatch.setattr(serial, "serial_for_url", lambda *a, **k: _Closing(board))
    args = _cli(["classify", "--port", "/dev/ttyUSB1", "--run", str(run), "digits:4"])
    assert args.func(args) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("slimgen classify: error: Timed out waiting for the board on "
                              "/dev/ttyUSB1 to acknowledge the 5,000-byte weight image")
    assert len(err) == 3 and "Traceback" not in "".join(err)


def test_progress_on_a_terminal():
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    progress = host_cli.LoadProgress(out, 115200)
    for sent in (2880, 5000):
        progress(sent, 5000)
    assert out.getvalue() == ("\rslimgen classify: loading the board's weights: 2,880 / 5,000 "
                              "bytes (57 %)\rslimgen classify: loading the board's weights: "
                              "5,000 / 5,000 bytes (100 %)\n")
