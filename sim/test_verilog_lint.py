"""Verilator's linter (``--lint-only -Wall``) on every top the flow generates: the MLP with each
of its engines (folded, dense, sparse in rows and in banks), the CNN, the LSTM, the UART bridge
and the iCEBreaker board top, each from a small seeded random model.

Any error fails, and so does any warning that ``lint_waivers.json`` does not accept; the file
says for each accepted class why it remains (how Amaranth's back end writes Verilog). A waiver
that no top needs any more fails too, so the list only ever shrinks to what is needed.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from slimgen.hw.verilog import to_verilog

from .fuzz import fuzz_case
from .runner import _venv_path
from .testing import random_cnn, random_recurrent_classifier, random_mlp, require_simulator

WAIVERS = json.loads((Path(__file__).with_name("lint_waivers.json")).read_text())["waivers"]

# Black boxes for the iCE40 I/O primitives that the board top instantiates.
ICE40_STUBS = """\
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off UNDRIVEN */
/* verilator lint_off UNUSEDPARAM */
module SB_IO #(parameter PIN_TYPE = 6'h00, parameter IO_STANDARD = "SB_LVCMOS",
              parameter PULLUP = 1'b0, parameter NEG_TRIGGER = 1'b0) (
  inout PACKAGE_PIN, input OUTPUT_ENABLE, input D_OUT_0, input D_OUT_1, output D_IN_0,
  output D_IN_1, input INPUT_CLK, input OUTPUT_CLK, input CLOCK_ENABLE, input LATCH_INPUT_VALUE);
endmodule
module SB_GB_IO #(parameter PIN_TYPE = 6'h00, parameter IO_STANDARD = "SB_LVCMOS") (
  inout PACKAGE_PIN, output GLOBAL_BUFFER_OUTPUT);
endmodule
/* verilator lint_on UNUSEDPARAM */
/* verilator lint_on UNDRIVEN */
/* verilator lint_on UNUSEDSIGNAL */
"""

_WARNING = re.compile(r"^%(Warning|Error)(?:-(\w+))?: (?:([^:\s]+):(\d+):\d+: )?(.*)$")
_QUOTED = re.compile(r"'([^']+)'")
_OPERATOR = re.compile(r"[-+*/&|^~!<>?%()]")


def _board_verilog(qmodel):
    """The debug Verilog of the iCEBreaker top, with the stubs of its I/O primitives."""
    from slimgen.boards.build import get_board
    from slimgen.boards.top import BoardTop
    board = get_board("icebreaker")
    plan = board.platform().prepare(BoardTop(qmodel, lanes=4, leds=board.leds), "board",
                                    debug_verilog=True)
    return plan.files["board.debug.v"] + ICE40_STUBS


def generated_tops():
    """``(name, Verilog text)`` of every top, module ``name`` (the flow's shapes, random
    weights)."""
    from slimgen.hw.cnn import CNN
    from slimgen.hw.compiler import compile_dataflow, compile_network
    from slimgen.hw.lstm_cell import LstmClassifier
    from slimgen.hw.network import Network
    from slimgen.hw.uart_bridge import UARTBridge

    rng = np.random.default_rng(21)
    dense, sparse = random_mlp(rng, (64, 32, 10)), random_mlp(rng, (64, 32, 10), density=0.2)
    cnn = random_cnn(rng, (8, 8, 1), (4, 8), pool=2, n_classes=10, density=0.5,
                     conv_bias=False)
    lstm = random_recurrent_classifier(rng, 8, 32, 10, steps=8, weight_bits=10,
                                       c_weight_bits=10, head_weight_bits=10)
    gru = random_recurrent_classifier(rng, 8, 32, 10, steps=8, cell="gru", weight_bits=8)
    components = {
        "mlp_folded": compile_network(dense, lanes=8),
        "mlp_dense": Network(dense, lanes=4, engines="dense"),
        "mlp_sparse_rows": Network(sparse, lanes=4, engines="sparse"),
        "mlp_sparse_banks": Network(sparse, lanes=4, engines="sparse", layout="banks"),
        "cnn": CNN(cnn, lanes=4),
        "lstm": LstmClassifier(lstm, lanes=8),
        "gru": LstmClassifier(gru, lanes=4),
        "gru_ew2": LstmClassifier(gru, lanes=4, ew_multipliers=2),
        # the compiler's engine, on a fuzzed network with conv, pool and dense layers
        "compiled": compile_network(fuzz_case(2).int_net, lanes=4),
        # the same as a dataflow pipeline: stages with queues, two on copies of their engine
        "dataflow": compile_dataflow(fuzz_case(2).int_net, lanes=[2, 3, 1, 2],
                                     copies=[2, 1, 1, 3]),
        "uart_bridge": UARTBridge(dense, divisor=104, lanes=4),
    }
    for name, component in components.items():
        yield name, to_verilog(component, name)
    yield "board", _board_verilog(dense)


def lint(path, top):
    """Verilator's messages on ``path``: a list of dicts with level, class, line and text."""
    verilator = shutil.which("verilator", path=_venv_path())
    r = subprocess.run([verilator, "--lint-only", "-Wall", "-Wno-fatal", "--top-module", top,
                        path.name], cwd=path.parent, capture_output=True, text=True, timeout=120)
    out = []
    for line in r.stderr.splitlines():
        mt = _WARNING.match(line)
        if mt and not (mt.group(1) == "Error" and mt.group(5).startswith("Exiting due to")):
            out.append({"level": mt.group(1), "class": mt.group(2) or "", "file": mt.group(3),
                        "line": int(mt.group(4) or 0), "text": mt.group(5)})
    if r.returncode and not any(m["level"] == "Error" for m in out):
        out.append({"level": "Error", "class": "", "file": None, "line": 0,
                    "text": f"verilator exited with {r.returncode}: {r.stderr[-2000:]}"})
    return out


def _is_alias(lines, line, name):
    """Whether ``name``, declared on ``line`` (1-based), is driven in its module only by
    ``assign name = <names, slices, concatenations, constants>;``."""
    start = max(k for k in range(line) if lines[k].startswith("module "))
    end = next(k for k in range(line, len(lines)) if lines[k].startswith("endmodule"))
    ident = re.escape(name if re.fullmatch(r"[A-Za-z_]\w*", name) else "\\" + name + " ")
    drivers = [ln for ln in lines[start:end]
               if re.match(rf"\s*assign {ident}\s*=", ln) or re.match(rf"\s*{ident}\s*<?=", ln)]
    return bool(drivers) and all(
        ln.lstrip().startswith("assign ") and not _OPERATOR.search(ln.split("=", 1)[1])
        for ln in drivers)


def waiver_for(message, lines):
    """Index of the first waiver that accepts ``message``, or None."""
    quoted = _QUOTED.search(message["text"])
    name = quoted.group(1) if quoted else None
    for k, w in enumerate(WAIVERS):
        if w["class"] != message["class"]:
            continue
        if "message" in w and not re.search(w["message"], message["text"]):
            continue
        if "signal" in w and not (name and re.fullmatch(w["signal"], name)):
            continue
        if w.get("alias") and not (name and _is_alias(lines, message["line"], name)):
            continue
        return k
    return None


@pytest.fixture(scope="module")
def lint_results(tmp_path_factory):
    require_simulator("verilator")
    folder = tmp_path_factory.mktemp("lint")
    results = {}
    for name, text in generated_tops():
        path = folder / f"{name}.v"
        path.write_text(text)
        results[name] = (text.splitlines(), lint(path, name))
    return results


@pytest.mark.sim
def test_generated_verilog_lints_clean_but_for_the_waivers(lint_results):
    used, offenders = set(), []
    for name, (lines, messages) in lint_results.items():
        for msg in messages:
            k = None if msg["level"] == "Error" else waiver_for(msg, lines)
            if k is None:
                offenders.append(f"{name}.v:{msg['line']}: %{msg['level']}-{msg['class']}: "
                                 f"{msg['text']}")
            else:
                used.add(k)
    assert not offenders, (f"{len(offenders)} lint messages not in lint_waivers.json:\n"
                           + "\n".join(offenders[:60]))
    stale = [f"{w['class']} {w.get('message', w.get('signal', ''))}"
             for k, w in enumerate(WAIVERS) if k not in used]
    assert not stale, f"Waivers no generated top needs any more (delete them): {stale}"


@pytest.mark.sim
def test_every_top_was_linted(lint_results):
    assert sorted(lint_results) == sorted([
        "board", "cnn", "compiled", "dataflow", "gru", "gru_ew2", "lstm", "mlp_dense", "mlp_folded",
        "mlp_sparse_banks", "mlp_sparse_rows", "uart_bridge"])
    for name, (lines, messages) in lint_results.items():
        assert any(ln.startswith(f"module {name}(") for ln in lines), name
