"""The constant nets of a netlist (what yosys' opt passes remove) and how the resource
model leaves them out."""

from amaranth.hdl import Mux, Signal
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from hw_units import counts
from hw_units import unit as _unit

from slimgen.boards.constant_nets import constant_nets
from slimgen.boards.resource_model import netlist_of


def _signals(unit, *names):
    """``{name: [bit value or None]}`` of the flip-flops named ``names`` in ``unit``."""
    from amaranth.hdl import _nir
    netlist = netlist_of(unit)
    constants = constant_nets(netlist)
    out = {}
    for idx, cell in enumerate(netlist.cells):
        if isinstance(cell, _nir.FlipFlop):
            for name in names:
                if any(name == n for n in _names_of(netlist, idx)):
                    out[name] = [constants.get(_nir.Net.from_cell(idx, k))
                                 for k in range(len(cell.data))]
    return out


def _names_of(netlist, idx):
    """The names of the signals cell ``idx`` drives."""
    for signal, value in netlist.signals.items():
        if value and value[0].is_cell and value[0].cell == idx:
            yield signal.name


def _dead_lane(m, u):
    """A lane whose ``valid`` is ``go`` and a row count of 0 (no rows to do): ``valid``
    stays 0, so its column counter never moves; a live counter beside it."""
    rows = Signal(3, name="rows")                  # never assigned: 0
    valid, col, live = Signal(name="valid"), Signal(4, name="col"), Signal(4, name="live")
    m.d.sync += valid.eq(u.go & (rows > 0))
    with m.If(valid):
        m.d.sync += col.eq(col + 1)
    with m.If(u.go):
        m.d.sync += live.eq(live + 1)
    m.d.comb += [u.col.eq(col), u.live.eq(live)]


def test_a_register_that_keeps_its_initial_value_is_constant():
    unit = _unit(_dead_lane, {"go": In(1), "col": Out(4), "live": Out(4)})
    found = _signals(unit, "valid", "col", "live")
    assert found == {"valid": [0], "col": [0, 0, 0, 0], "live": [None] * 4}


def test_registers_that_hold_each_other_are_constant():
    """Two registers that copy each other from the same initial value never change (the
    greatest fixed point); one whose copy is inverted does."""
    def body(m, u):
        a, b = Signal(2, init=1, name="a"), Signal(2, init=1, name="b")
        c, d = Signal(name="c"), Signal(name="d")
        m.d.sync += [a.eq(b), b.eq(Mux(u.go, a, b)), c.eq(~d), d.eq(c)]
        m.d.comb += u.y.eq(a + b + c + d)
    found = _signals(_unit(body, {"go": In(1), "y": Out(4)}), "a", "b", "c", "d")
    assert found == {"a": [1, 0], "b": [1, 0], "c": [None], "d": [None]}


def test_a_case_on_a_constant_register_picks_its_arm():
    """Patterns are most significant bit first: ``st`` = 2 matches ``Case(2)`` only."""
    def body(m, u):
        st, hit2, hit4 = Signal(4, init=2, name="st"), Signal(name="hit2"), Signal(name="hit4")
        with m.If(u.go):
            m.d.sync += st.eq(st)
        with m.Switch(st):
            with m.Case(2):
                m.d.sync += hit2.eq(1)
            with m.Case(4):
                m.d.sync += hit4.eq(1)
        m.d.comb += u.y.eq(hit2 + hit4)
    found = _signals(_unit(body, {"go": In(1), "y": Out(2)}), "st", "hit2", "hit4")
    assert found["st"] == [0, 1, 0, 0] and found["hit4"] == [0] and found["hit2"] == [None]


def test_the_model_leaves_out_a_dead_lane():
    """The dead counter costs nothing; the live one its adder and flip-flops."""
    unit = _unit(_dead_lane, {"go": In(1), "col": Out(4), "live": Out(4)})
    found = counts(unit)
    assert found["ff"] == 4 and found["inc"] == 4


def test_a_memory_read_below_a_constant_address_bit_is_that_deep():
    """A 128 × 8 RAM read at a column that never passes 1 (its counter is dead) is counted
    as the 2 × 8 bits it can read, with no read multiplexer over 16-deep rows: yosys keeps
    one 16 × 8 LUT RAM row on the ECP5 (the CNN's feature copies of lanes without
    classifier rows, bench/README.md)."""
    def body(m, u):
        _dead_lane(m, u)
        mem = Memory(shape=8, depth=128, init=[])
        m.submodules.mem = mem
        w, r = mem.write_port(), mem.read_port()
        col = Signal(7, name="rcol")
        m.d.comb += col.eq(Mux(u.go, 0, u.col + 1))
        m.d.comb += [w.addr.eq(u.wa), w.data.eq(u.wd), w.en.eq(1), r.addr.eq(col),
                     u.rd.eq(r.data)]
    unit = _unit(body, {"go": In(1), "col": Out(4), "live": Out(4), "wa": In(7), "wd": In(8),
                        "rd": Out(8)})
    found = counts(unit, "ecp5")
    # the mux: the address's one bit that moves (8 rows would add 8 × 7 read multiplexers)
    assert found["lutram"] == 2 * 8 and found["mux"] == 1
