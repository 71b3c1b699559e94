"""The nets of an Amaranth netlist that never change: what yosys' ``opt_expr``, ``opt_dff``
and ``opt_clean`` find constant and remove before mapping, found here on the netlist so that
:mod:`slimgen.boards.resource_model` does not count it.

A lane with no rows of a layer (16 lanes, 10 classes) keeps its ``valid`` register at 0, so
its column counter never moves, so its feature memory is read at addresses 0 and 1 only:
yosys keeps one 16-deep LUT RAM of the eight, and none of the counter. The analysis is
ternary (0, 1 or unknown) and optimistic about registers: every flip-flop bit is first taken
to hold its initial value; one whose next value can differ (given the others that still
hold theirs) is unknown, and that spreads through its readers until nothing changes (the
greatest fixed point: what holds in the initial state and in every next state holds
always). Top-level inputs, instances and memory reads are unknown: a ROM's column that is
the same in every word is not a constant here, as it is not to yosys until its memories are
mapped, after the multipliers (a multiplier by such a column keeps its DSP block).
"""

from __future__ import annotations

from collections import defaultdict

from amaranth.hdl import _nir

__all__ = ["constant_nets"]

_X = None       # an unknown bit


def constant_nets(netlist):
    """``{net: 0 or 1}``: every cell output net of ``netlist`` (an ``amaranth.hdl._nir``
    ``Netlist``) that holds one value in every cycle, as above."""
    cells = netlist.cells
    value = {}                                  # net -> 0/1; absent: unknown
    held = set()                                # flip-flop output nets still held at init
    read_by = defaultdict(set)                  # net -> the combinational cells reading it
    ffs_of = defaultdict(set)                   # net -> flip-flops whose data reads it
    comb = []
    for idx, cell in enumerate(cells):
        if isinstance(cell, _nir.FlipFlop):
            for k in range(len(cell.data)):
                held.add(_nir.Net.from_cell(idx, k))
                value[_nir.Net.from_cell(idx, k)] = (cell.init >> k) & 1
            for net in cell.data:
                ffs_of[net].add(idx)
        elif isinstance(cell, _EVALUATED):
            comb.append(idx)
            for net in cell.input_nets():
                read_by[net].add(idx)

    def bit(net):
        return net.const if net.is_const else value.get(net, _X)

    def update(idx):
        """Evaluates cell ``idx``; returns its output nets that became unknown."""
        lost = []
        for k, b in enumerate(_evaluate(cells[idx], bit)):
            net = _nir.Net.from_cell(idx, k)
            if b is _X and net in value:
                del value[net]
                lost.append(net)
            elif b is not _X and net not in value:
                value[net] = b
        return lost

    for idx in _topological(netlist, comb):     # the optimistic first state
        update(idx)
    work = [idx for idx, cell in enumerate(cells) if isinstance(cell, _nir.FlipFlop)]
    pending = set()
    while work:
        idx = work.pop()
        cell = cells[idx]
        lost = []
        if isinstance(cell, _nir.FlipFlop):
            for k, net in enumerate(cell.data):
                out = _nir.Net.from_cell(idx, k)
                if out in held and bit(net) != (cell.init >> k) & 1:
                    held.discard(out)
                    del value[out]
                    lost.append(out)
        else:
            pending.discard(idx)
            lost = update(idx)
        for net in lost:
            for reader in read_by[net]:
                if reader not in pending:
                    pending.add(reader)
                    work.append(reader)
            work.extend(ffs_of[net])
    return value


def _topological(netlist, comb):
    """``comb`` (cell indices) ordered so that a cell comes after the cells it reads."""
    cells = netlist.cells
    members = set(comb)
    needs = {idx: {n.cell for n in cells[idx].input_nets() if n.is_cell and n.cell in members}
             for idx in comb}
    readers = defaultdict(list)
    for idx, deps in needs.items():
        for dep in deps:
            readers[dep].append(idx)
    ready = [idx for idx in comb if not needs[idx]]
    order = []
    while ready:
        idx = ready.pop()
        order.append(idx)
        for reader in readers[idx]:
            needs[reader].discard(idx)
            if not needs[reader]:
                ready.append(reader)
    assert len(order) == len(comb), "a combinational cycle in the netlist"
    return order


def _evaluate(cell, bit):
    """The output bits (0, 1 or unknown) of a combinational ``cell`` given ``bit(net)``."""
    if isinstance(cell, _nir.Operator):
        return _operator(cell.operator, [[bit(n) for n in v] for v in cell.inputs])
    if isinstance(cell, _nir.Part):
        return _part(cell, [bit(n) for n in cell.value], [bit(n) for n in cell.offset])
    if isinstance(cell, _nir.Matches):
        bits = [bit(n) for n in cell.value]
        return [_any(_matches(bits, p) for p in cell.patterns)]
    if isinstance(cell, _nir.PriorityMatch):
        out, before = [], 0                     # 0 / 1 / unknown: an earlier input is 1
        en = bit(cell.en)
        for net in cell.inputs:
            b = bit(net)
            out.append(_and(en, _and(b, _not(before))))
            before = _or(before, b)
        return out
    if isinstance(cell, _nir.AssignmentList):
        out = [bit(n) for n in cell.default]
        for a in cell.assignments:
            cond = bit(a.cond)
            if cond == 0:
                continue
            for j, net in enumerate(a.value):
                k = a.start + j
                if k < len(out):
                    out[k] = bit(net) if cond == 1 else _same(out[k], bit(net))
        return out
    raise TypeError(type(cell).__name__)


def _same(a, b):
    return a if a == b else _X


def _not(a):
    return _X if a is _X else 1 - a


def _and(a, b):
    if a == 0 or b == 0:
        return 0
    return 1 if a == 1 and b == 1 else _X


def _or(a, b):
    if a == 1 or b == 1:
        return 1
    return 0 if a == 0 and b == 0 else _X


def _any(bits):
    out = 0
    for b in bits:
        out = _or(out, b)
    return out


def _matches(bits, pattern):
    """Whether ``bits`` (LSB first) match ``pattern`` (a string, MSB first)."""
    out = 1
    for b, p in zip(bits, reversed(pattern)):
        if p != "-":
            out = _and(out, b if p == "1" else _not(b))
    return out


def _int(bits, signed=False):
    v = sum(b << k for k, b in enumerate(bits))
    if signed and bits and bits[-1]:
        v -= 1 << len(bits)
    return v


def _bits(v, width):
    return [(v >> k) & 1 for k in range(width)]


def _operator(op, ins):
    """One operator of ``amaranth.hdl._nir.Operator`` on ternary bit lists."""
    width = len(ins[1]) if op == "m" else (1 if op in _ONE_BIT else len(ins[0]))
    if op == "m":
        sel, a, b = ins[0][0], ins[1], ins[2]
        if sel is not _X:
            return list(a if sel else b)
        return [_same(x, y) for x, y in zip(a, b)]
    if op == "~":
        return [_not(x) for x in ins[0]]
    if op in ("&", "|", "^"):
        f = {"&": _and, "|": _or, "^": lambda x, y: _X if _X in (x, y) else x ^ y}[op]
        return [f(x, y) for x, y in zip(*ins)]
    if op in ("r|", "b"):
        return [_any(ins[0])]
    if op == "r&":
        return [_not(_any(_not(x) for x in ins[0]))]
    if op in ("==", "!="):
        differ = _any(_X if _X in (x, y) else x ^ y for x, y in zip(*ins))
        return [differ if op == "!=" else _not(differ)]
    if op == "*" and any(all(x == 0 for x in v) for v in ins):
        return [0] * width
    if op in ("u<", "u>=") and all(x == 0 for x in ins[1]):      # x < 0: never
        return [int(op == "u>=")]
    if op in ("<<", "u>>", "s>>") and _X not in ins[1]:
        return _shift(op, ins[0], _int(ins[1]))
    if any(x is _X for v in ins for x in v):
        return [_X] * width
    return _bits(_exact(op, ins), width)


_ONE_BIT = {"r|", "r&", "r^", "b", "==", "!=", "u<", "s<", "u>", "s>", "u<=", "s<=", "u>=",
            "s>="}


def _shift(op, value, amount):
    n = len(value)
    if op == "<<":
        return [0] * min(amount, n) + value[:max(0, n - amount)]
    fill = value[-1] if op == "s>>" else 0
    return value[amount:] + [fill] * min(amount, n)


def _exact(op, ins):
    """``op`` on fully known operands (as ``amaranth.hdl._nir.Operator`` defines it)."""
    signed = op[0] == "s"               # s<, s//, ...; u<, u//, ... unsigned
    a = _int(ins[0], signed)
    b = _int(ins[1], signed) if len(ins) > 1 else 0
    name = op[1:] if op[0] in "us" else op
    if len(ins) == 1:
        return {"-": -a, "r^": sum(ins[0]) & 1}[op]
    if name in ("//", "%"):         # floor division, as Python's; by zero: 0
        return 0 if b == 0 else (a // b if name == "//" else a % b)
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
            "<": lambda: int(a < b), ">": lambda: int(a > b), "<=": lambda: int(a <= b),
            ">=": lambda: int(a >= b)}[name]()


def _part(cell, value, offset):
    """``Part``: ``width`` bits of ``value`` from ``offset · stride`` (past the end: the
    sign bit if signed, else 0)."""
    if _X in offset:
        return [_X] * cell.width
    start = _int(offset) * cell.stride
    fill = value[-1] if cell.value_signed else 0
    return [value[start + k] if start + k < len(value) else fill for k in range(cell.width)]


_EVALUATED = (_nir.Operator, _nir.Part, _nir.Matches, _nir.PriorityMatch, _nir.AssignmentList)
