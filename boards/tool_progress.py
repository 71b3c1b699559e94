"""How far a build is, and what it used, from nextpnr's own log (while it runs, and after it
stopped without a report: :func:`parse_log_utilisation`).

A large ECP5 design spends minutes in yosys and up to an hour or more in nextpnr's router
(the YoWASP programs run on one core). :class:`BuildProgress` follows nextpnr's log
(``--log <name>.tim``) as it grows and says what the tools are doing when the phase changes,
then at most once a minute while the news changes (the arcs left) and every five minutes while
it does not (yosys, the placer):

- ``synthesizing (yosys)`` until nextpnr's log appears;
- ``placing`` from nextpnr's first line, with the logic it packed (``TRELLIS_COMB: 35121/83640``
  or ``ICESTORM_LC: ...``) once the utilisation is printed;
- ``routing: R of N arcs left`` (router1's table: its last column but two is the arcs still
  to route) or ``routing: iteration I, O wires overused`` (router2);
- ``packing the bitstream`` after nextpnr's ``Program finished normally``.
"""

import re
import time
from pathlib import Path

__all__ = ["BuildProgress", "read_phase", "parse_log_utilisation"]

_LOG_UTIL = re.compile(r"^Info:\s+([A-Z0-9_]+):\s+(\d+)/\s*(\d+)\s+\d+%", re.MULTILINE)
_LOGIC_CELLS = ("TRELLIS_COMB", "ICESTORM_LC")
_ROUTE_TOTAL = re.compile(r"^Info: Routing (\d+) arcs\.")
_ROUTER1_ROW = re.compile(r"^Info:\s+\d+ \|\s+\d+\s+\d+ \|\s+\d+\s+\d+ \|\s+(\d+)\|")
_ROUTER2_ITER = re.compile(r"^Info:\s+iter=(\d+) wires=\d+ overused=(\d+)")


def parse_log_utilisation(text):
    """Cell type → ``(used, available)`` from nextpnr's "Device utilisation" lines in a log.

    Used when nextpnr stops before it writes its report (a design that does not fit); the last
    table in the log wins.
    """
    return {cell: (int(used), int(avail)) for cell, used, avail in _LOG_UTIL.findall(text)}


def read_phase(state, lines):
    """``state`` (a dict, changed in place) after nextpnr's log ``lines``; returns the phase
    as a sentence. Keys: ``phase`` (placing, routing, packing), ``cells`` ("35,121 of 83,640
    TRELLIS_COMB"), ``arcs`` (total), ``left``, ``iteration``, ``overused``."""
    for line in lines:
        if util := parse_log_utilisation(line):
            state.setdefault("phase", "placing")
            for cell in set(util) & set(_LOGIC_CELLS):
                state["cells"] = f"{util[cell][0]:,} of {util[cell][1]:,} {cell}"
        elif m := _ROUTE_TOTAL.match(line):
            state.update(phase="routing", arcs=int(m[1]), left=int(m[1]))
        elif m := _ROUTER1_ROW.match(line):
            state.update(phase="routing", left=int(m[1]))
        elif m := _ROUTER2_ITER.match(line):
            state.update(phase="routing", iteration=int(m[1]), overused=int(m[2]))
        elif line.startswith("Info: Program finished normally"):
            state["phase"] = "packing"
        else:
            state.setdefault("phase", "placing")
    phase = state.get("phase", "placing")
    if phase == "packing":
        return "packing the bitstream"
    if phase == "routing":
        if "iteration" in state:
            return f"routing: iteration {state['iteration']}, {state['overused']:,} wires overused"
        return f"routing: {state['left']:,} of {state['arcs']:,} arcs left"
    return "placing" + (f" ({state['cells']})" if "cells" in state else "")


class BuildProgress:
    """Follows ``log_path`` (nextpnr's ``--log``) from offset 0 as it grows; :meth:`poll`
    calls ``say(message)`` when the phase changes, and within a phase at most every
    ``every`` seconds when the sentence changed, every ``same_every`` when it did not, with
    the minutes since ``start`` (a ``clock()`` time; default now)."""

    def __init__(self, log_path, say, *, every=60.0, same_every=300.0, clock=time.monotonic,
                 start=None):
        self.log_path = Path(log_path)
        self.say, self.every, self.same_every, self.clock = say, every, same_every, clock
        self.sentence = None
        self.last_said = clock()
        self.t0 = self.last_said if start is None else start    # the minutes count from it
        self.offset, self.partial = 0, ""
        self.state, self.phase = {}, None

    def _new_lines(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return None
        self.offset += len(chunk)
        text = self.partial + chunk.decode(errors="replace")
        lines = text.split("\n")
        self.partial = lines.pop()          # a line nextpnr has not ended yet
        return lines

    def poll(self):
        lines = self._new_lines()
        sentence = "synthesizing (yosys)" if lines is None else read_phase(self.state, lines)
        phase = sentence.split(":")[0].split(" (")[0]
        now = self.clock()
        wait = self.every if sentence != self.sentence else self.same_every
        if phase != self.phase or now - self.last_said >= wait:
            minutes = (now - self.t0) / 60
            self.say(f"build: {sentence} ({minutes:.0f} min)")
            self.phase, self.sentence, self.last_said = phase, sentence, now
