"""Lane weights kept in the iCE40UP5K's single-port RAMs (``SB_SPRAM256KA``), written at run time.

The UP5K has 30 block RAMs of 4 kbit (120 kbit) and four SPRAMs of 16 bits × 16,384 words
(1 Mbit). A bitstream cannot initialise an SPRAM, so weights kept there arrive after
configuration, on the ``load`` stream (the host sends them over the UART,
:mod:`slimgen.sw.uart_protocol`), and ``loaded`` says when they are all written.

Layout. At address ``a`` the P lanes' words are one row of ``P·w`` bits, lane p at bits
``[p·w, (p+1)·w)`` (two's complement), padded with zeros to ``B = ⌈P·w / 16⌉`` halfwords;
halfword b of row a is SPRAM b's word a::

    row a:   | lane P−1 | … | lane 1 | lane 0 |      (P·w bits, zero-padded to 16·B)
              └── SPRAM B−1 ──┘ … └── SPRAM 0 ──┘     (16 bits each, address a)

The weight image (:func:`weight_image`) is, for a = 0 … D−1, for b = 0 … B−1, the low byte and
then the high byte of that halfword: ``2·B·D`` bytes. A byte is written with ``MASKWREN``
``0b0011`` (low) or ``0b1100`` (high), the byte on both halves of ``DATAIN``; a read gives the
row one cycle after its address, as a block RAM's read port does.
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SPRAM_WORDS", "SPRAM_WIDTH", "spram_blocks", "weight_image", "SpramWeights"]

#: Words and bits of one ``SB_SPRAM256KA``.
SPRAM_WORDS = 16384
SPRAM_WIDTH = 16


def spram_blocks(lanes, weight_bits):
    """SPRAMs side by side holding a row of ``lanes`` weights of ``weight_bits``: ⌈P·w / 16⌉."""
    return -(-lanes * weight_bits // SPRAM_WIDTH)


def _check(lane_words, weight_bits):
    if not lane_words or any(len(words) != len(lane_words[0]) for words in lane_words):
        raise ValueError("Every lane needs the same number of weight words (at least one lane)")
    depth = len(lane_words[0])
    if not 1 <= depth <= SPRAM_WORDS:
        raise ValueError(f"An SPRAM holds {SPRAM_WORDS:,} words, so a lane may have 1 to "
                         f"{SPRAM_WORDS:,} weight words, not {depth:,}")
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    bad = [w for words in lane_words for w in words if not lo <= int(w) <= hi]
    if bad:
        raise ValueError(f"Weight {bad[0]} does not fit {weight_bits} signed bits "
                         f"({lo} … {hi})")
    return depth


def weight_image(lane_words, weight_bits):
    """The bytes the ``load`` stream takes for ``lane_words`` (P lists of D signed words), in
    the order of the module docstring."""
    depth = _check(lane_words, weight_bits)
    P, B = len(lane_words), spram_blocks(len(lane_words), weight_bits)
    mask = (1 << weight_bits) - 1
    out = bytearray()
    for a in range(depth):
        row = sum((int(lane_words[p][a]) & mask) << (p * weight_bits) for p in range(P))
        out += row.to_bytes(2 * B, "little")
    return bytes(out)


class SpramWeights(wiring.Component):
    """P lanes' weight memories in ⌈P·w/16⌉ SPRAMs, written by ``load``, read by ``addr``.

    Parameters
    ----------
    lane_words : list of list of int
        Lane p's signed words at addresses 0 … D−1 (D ≤ 16,384); they define the image only,
        nothing is initialised.
    weight_bits : int
        w, the signed width of a weight.

    Attributes
    ----------
    addr : In(range(D))
        The row to read; ``data`` has it on the next cycle. Ignored while a byte is written.
    data : Out(ArrayLayout(signed(w), P))
        Every lane's word of the row read.
    load : In(stream.Signature(unsigned(8)))
        The weight image, one byte per transfer, always ready; the byte after the last starts
        the image again from address 0.
    loaded : Out(1)
        High while the last byte written was the image's last: low at power-up and from the
        first byte of a new image on. A reset does not clear it (nor the SPRAMs): it only
        rewinds the write position, so a host's abandoned request does not cost a reload.
    """

    def __init__(self, lane_words, weight_bits):
        self.depth = _check(lane_words, weight_bits)
        self.lanes, self.weight_bits = len(lane_words), weight_bits
        self.blocks = spram_blocks(self.lanes, weight_bits)
        self.image = weight_image(lane_words, weight_bits)
        super().__init__({
            "addr": In(range(self.depth)),
            "data": Out(data.ArrayLayout(signed(weight_bits), self.lanes)),
            "load": In(stream.Signature(unsigned(8))),
            "loaded": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        D, B = self.depth, self.blocks
        row = Signal(range(D), name="load_row")        # the byte being written: its row,
        block = Signal(range(max(2, B)), name="load_block")   # its SPRAM,
        high = Signal(name="load_high")                # and its half
        loaded = Signal(name="image_loaded", reset_less=True)
        write = self.load.valid
        m.d.comb += [self.load.ready.eq(1), self.loaded.eq(loaded)]
        with m.If(write):
            m.d.sync += high.eq(~high)
            with m.If(high):
                m.d.sync += block.eq(block + 1)
                with m.If(block == B - 1):
                    m.d.sync += [block.eq(0), row.eq(row + 1)]
                    with m.If(row == D - 1):
                        m.d.sync += row.eq(0)
            last = high & (block == B - 1) & (row == D - 1)
            m.d.sync += loaded.eq(last)

        address = Signal(14, name="spram_address")
        m.d.comb += address.eq(Mux(write, row, self.addr))
        outs = []
        for b in range(B):
            dout = Signal(SPRAM_WIDTH, name=f"spram{b}_data")
            m.submodules[f"spram{b}"] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=address, i_DATAIN=Cat(self.load.payload, self.load.payload),
                i_MASKWREN=Mux(high, Const(0b1100, 4), Const(0b0011, 4)),
                i_WREN=write & (block == b), i_CHIPSELECT=Const(1, 1), i_CLOCK=ClockSignal(),
                i_STANDBY=Const(0, 1), i_SLEEP=Const(0, 1), i_POWEROFF=Const(1, 1),
                o_DATAOUT=dout)
            outs.append(dout)
        m.d.comb += self.data.as_value().eq(Cat(*outs)[:self.lanes * self.weight_bits])
        return m
