"""Streaming convolution layer: line buffer, tile engine (Winograd or direct), band reorder,
bias, requantization and ReLU, stream ports.

Computes one 2-D :class:`slimgen.sw.integer_model.IntConv` on ``H × W`` images exactly as
:func:`slimgen.sw.golden.conv` does (stride 1, zero padding ``p`` on every side).

Streams. ``i`` carries activations in raster order with the channel fastest (``y, x, c``);
``o`` carries the outputs in the same order (``oy, ox, k``): requantized ``out_bits``
activations, or the signed accumulators when the layer does not requantize. Frames follow one
another without gaps in the stream.

Line buffer. ``R = Nr + m`` row memories (block RAM, ``W·Cin`` words each); input row ``y``
lives in memory ``y mod R``. The loader writes a row as soon as no window of the current band
still needs the row it replaces, so loading overlaps computing. Band ``b`` covers output rows
``b·m … b·m + m − 1`` and reads input rows ``b·m − p … b·m − p + Nr − 1``; tiles across a band
read columns ``t·m − p …``; rows and columns outside the image read as zero (padding), and the
edge tiles' surplus outputs are dropped.

Window reader. For each band, tile and input channel it reads the ``Nc`` columns of the
``Nr × Nc`` window (all rows in parallel, one column per cycle) and hands the window to the
engine: ``Nc + 2`` cycles per window, hidden behind the engine's pass of ``Cout·S`` cycles when
that is at least as long.

Band reorder. The engine returns ``m × m`` output tiles per output channel; they are written
(all ``m²`` at once, into ``m²`` memories) into one of two band banks, which a serializer reads
in raster order while the engine fills the other; bias, requantization and ReLU are applied on
the way out.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.winograd.hardware import output_size
from slimgen.sw.winograd import Winograd2D, csd_digits

from .direct_conv import direct_tile
from .winograd_tile import check_conv, winograd_tile

__all__ = ["ConvLayer"]


def _check_positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


class ConvLayer(wiring.Component):
    """One integer convolution layer in hardware.

    Parameters
    ----------
    layer : IntConv
        Square kernels, stride 1, the same padding on every side, unsigned inputs; requantizing
        with ReLU (one multiplier) or giving its accumulators.
    height, width : int
        Input image size.
    algorithm : Winograd2D or None
        The Winograd algorithm (F(m×m, r×r) with ``r`` the layer's kernel), or ``None`` for the
        direct engine.
    lanes : int or None
        Multipliers (Winograd: 1 … α², default α²; direct: ``q·r²``, default ``r²``).
    tile : int
        Output tile of the direct engine (ignored for Winograd, whose tile is ``m``).

    Attributes
    ----------
    i : In(stream.Signature(unsigned(in_bits)))
    o : Out(stream.Signature(unsigned(out_bits) or signed(acc_bits)))
    active : Out(range(lanes + 1))
        Multipliers doing a useful product this cycle.
    """

    def __init__(self, layer, *, height, width, algorithm=None, lanes=None, tile=2):
        check_conv(layer)
        _check_positive("Height", height)
        _check_positive("Width", width)
        if layer.requant and not layer.relu:
            raise ValueError("Requantizing layers must use ReLU in hardware (unsigned outputs)")
        if layer.requant and not isinstance(layer.multiplier, int):
            raise ValueError("The layer has one multiplier per output channel; the conv layer "
                             "takes one")
        if algorithm is not None and not isinstance(algorithm, Winograd2D):
            raise TypeError(f"Algorithm must be a Winograd2D or None, not {algorithm!r}")
        self.layer, self.height, self.width = layer, height, width
        self.algorithm = algorithm
        self.out_h = output_size(height, layer.kernel, layer.padding)
        self.out_w = output_size(width, layer.kernel, layer.padding)
        if self.out_h < 1 or self.out_w < 1:
            raise ValueError(f"A {height}×{width} image with padding {layer.padding} is smaller "
                             f"than the {layer.kernel}×{layer.kernel} kernel")
        if algorithm is None:
            self.engine = direct_tile(layer, tile=tile, lanes=lanes)
        else:
            self.engine = winograd_tile(layer, algorithm, lanes=lanes)
        self.lanes = self.engine.lanes
        self.m = self.engine.out_tile[0]
        self.n_win = self.engine.window[0]
        self.bands = -(-self.out_h // self.m)
        self.tiles = -(-self.out_w // self.m)
        self.rows = self.n_win + self.m
        out_shape = unsigned(layer.out_bits) if layer.requant else signed(layer.acc_bits)
        super().__init__({
            "i": In(stream.Signature(unsigned(layer.in_bits))),
            "o": Out(stream.Signature(out_shape)),
            "active": Out(range(self.lanes + 1)),
        })

    @property
    def windows_per_frame(self) -> int:
        return self.bands * self.tiles * self.layer.c_in

    def elaborate(self, platform):
        m = Module()
        L, H, W = self.layer, self.height, self.width
        Cin, Cout, p = L.c_in, L.c_out, L.padding
        N, mt, R, B, T = self.n_win, self.m, self.rows, self.bands, self.tiles
        m.submodules.engine = eng = self.engine
        m.d.comb += self.active.eq(eng.active)

        # Line buffer: R row memories.
        rd, wr = [], []
        for j in range(R):
            mem = memory.Memory(shape=unsigned(L.in_bits), depth=W * Cin, init=[])
            m.submodules[f"row{j}"] = mem
            wr.append(mem.write_port())
            rd.append(mem.read_port())

        # Loader.
        ly = Signal(range(H + 1))
        lx = Signal(range(W))
        lc = Signal(range(Cin))
        l_row = Signal(range(R))          # ly mod R
        l_addr = Signal(range(W * Cin))
        band = Signal(range(B))
        band_row0 = Signal(signed(16), init=-p)     # band·m − p
        reader_done = Signal()
        room = ly < band_row0 + R
        m.d.comb += self.i.ready.eq((ly < H) & room)
        for j in range(R):
            m.d.comb += [wr[j].addr.eq(l_addr), wr[j].data.eq(self.i.payload),
                         wr[j].en.eq(self.i.valid & self.i.ready & (l_row == j))]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += l_addr.eq(l_addr + 1)
            m.d.sync += lc.eq(Mux(lc == Cin - 1, 0, lc + 1))
            with m.If(lc == Cin - 1):
                m.d.sync += lx.eq(Mux(lx == W - 1, 0, lx + 1))
                with m.If(lx == W - 1):
                    m.d.sync += [ly.eq(ly + 1), l_row.eq(Mux(l_row == R - 1, 0, l_row + 1)),
                                 l_addr.eq(0)]

        # Window reader.
        t = Signal(range(T))
        c = Signal(range(Cin))
        v = Signal(range(N))
        x_col = Signal(signed(16), init=-p)         # t·m − p + v
        base = Signal(range(R), init=(-p) % R)      # (band·m − p) mod R
        pending = Signal()
        win = [[Signal(unsigned(L.in_bits), name=f"win{u}_{k}") for k in range(N)]
               for u in range(N)]
        win_valid = Signal()
        need = band_row0 + N
        band_ready = (ly >= need) | (ly == H)
        issue = Signal()
        m.d.comb += issue.eq(~pending & ~reader_done & band_ready)
        col_ok = (x_col >= 0) & (x_col < W)
        for j in range(R):
            m.d.comb += [rd[j].addr.eq(x_col * Cin + c), rd[j].en.eq(issue)]
        arr, arr_v, arr_ok = Signal(), Signal(range(N)), Signal()
        arr_row0, arr_base = Signal.like(band_row0), Signal.like(base)
        m.d.sync += [arr.eq(issue), arr_v.eq(v), arr_ok.eq(col_ok), arr_row0.eq(band_row0),
                     arr_base.eq(base)]
        datas = Array(r.data for r in rd)
        for u in range(N):
            y_in = arr_row0 + u
            row_ok = (y_in >= 0) & (y_in < H)
            idx = Signal(range(R), name=f"ridx{u}")
            m.d.comb += idx.eq(Mux(arr_base + u >= R, arr_base + u - R, arr_base + u))
            for k in range(N):
                with m.If(arr & (arr_v == k)):
                    m.d.sync += win[u][k].eq(Mux(arr_ok & row_ok, datas[idx], 0))
        with m.If(arr & (arr_v == N - 1)):
            m.d.sync += win_valid.eq(1)
        m.d.comb += eng.i.valid.eq(win_valid)
        m.d.comb += [eng.i.payload[u * N + k].eq(win[u][k]) for u in range(N) for k in range(N)]
        with m.If(win_valid & eng.i.ready):
            m.d.sync += [win_valid.eq(0), pending.eq(0)]
        last_band = band == B - 1
        with m.If(issue):
            m.d.sync += [v.eq(v + 1), x_col.eq(x_col + 1)]
            with m.If(v == N - 1):
                m.d.sync += [v.eq(0), pending.eq(1), x_col.eq(t * mt - p)]
                m.d.sync += c.eq(Mux(c == Cin - 1, 0, c + 1))
                with m.If(c == Cin - 1):
                    m.d.sync += [t.eq(Mux(t == T - 1, 0, t + 1)),
                                 x_col.eq(Mux(t == T - 1, -p, (t + 1) * mt - p))]
                    with m.If(t == T - 1):
                        with m.If(last_band):
                            m.d.sync += reader_done.eq(1)
                        with m.Else():
                            m.d.sync += [band.eq(band + 1), band_row0.eq(band_row0 + mt),
                                         base.eq(Mux(base + mt >= R, base + mt - R, base + mt))]
        # The band's rows stay in memory until its last window has arrived: the loader's room
        # check uses band_row0, which advances only after the band's last issue (rows of the
        # next band are then the ones kept).
        frame_end = reader_done & (ly == H) & ~pending & ~win_valid
        with m.If(frame_end):
            m.d.sync += [reader_done.eq(0), ly.eq(0), l_row.eq(0), band.eq(0),
                         band_row0.eq(-p), base.eq((-p) % R), x_col.eq(-p)]

        # Band reorder: m² memories, two banks.
        acc_shape = signed(L.acc_bits)
        depth = T * Cout
        banks = []
        for j in range(mt * mt):
            mem = memory.Memory(shape=acc_shape, depth=2 * depth, init=[])
            m.submodules[f"band{j}"] = mem
            banks.append((mem.write_port(), mem.read_port()))
        bias = Array(Const(int(b), acc_shape) for b in L.b)
        full = Signal(2)
        wb = Signal()
        ot = Signal(range(T))
        ok = Signal(range(Cout))
        w_band = Signal(range(B))
        bank_band = Array(Signal(range(B), name=f"bank_band{j}") for j in range(2))
        m.d.comb += eng.o.ready.eq(~full.bit_select(wb, 1))
        w_addr = wb * depth + ot * Cout + ok
        for j, (bw, _) in enumerate(banks):
            m.d.comb += [bw.addr.eq(w_addr), bw.data.eq(eng.o.payload[j] + bias[ok]),
                         bw.en.eq(eng.o.valid & eng.o.ready)]
        with m.If(eng.o.valid & eng.o.ready):
            m.d.sync += ok.eq(Mux(ok == Cout - 1, 0, ok + 1))
            with m.If(ok == Cout - 1):
                m.d.sync += ot.eq(Mux(ot == T - 1, 0, ot + 1))
                with m.If(ot == T - 1):
                    m.d.sync += [full.bit_select(wb, 1).eq(1), wb.eq(~wb),
                                 bank_band[wb].eq(w_band),
                                 w_band.eq(Mux(w_band == B - 1, 0, w_band + 1))]

        # Serializer: raster order out of the full bank, bias already added; requantize.
        rb = Signal()
        si = Signal(range(mt))
        sxd = Signal(range(T))
        sxm = Signal(range(mt))
        sx = Signal(range(self.out_w))
        sk = Signal(range(Cout))
        advance = ~self.o.valid | self.o.ready
        go = full.bit_select(rb, 1) & advance
        rows_here = Mux(bank_band[rb] == B - 1, self.out_h - (B - 1) * mt, mt)
        for j, (_, br) in enumerate(banks):
            m.d.comb += [br.addr.eq(rb * depth + sxd * Cout + sk), br.en.eq(advance)]
        sel = Signal(range(mt * mt))
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(go), sel.eq(si * mt + sxm)]
        with m.If(go):
            m.d.sync += sk.eq(Mux(sk == Cout - 1, 0, sk + 1))
            with m.If(sk == Cout - 1):
                m.d.sync += [sx.eq(sx + 1), sxm.eq(Mux(sxm == mt - 1, 0, sxm + 1))]
                with m.If(sxm == mt - 1):
                    m.d.sync += sxd.eq(sxd + 1)
                with m.If(sx == self.out_w - 1):
                    m.d.sync += [sx.eq(0), sxm.eq(0), sxd.eq(0), si.eq(si + 1)]
                    with m.If(si == rows_here - 1):
                        m.d.sync += [si.eq(0), full.bit_select(rb, 1).eq(0), rb.eq(~rb)]
        acc = Array(br.data for _, br in banks)[sel]
        if L.requant:
            amax = (1 << L.out_bits) - 1
            # acc · M as shift-adds over M's canonical signed digits: M is a constant, so this
            # costs a few adders and leaves every DSP block to the engine's lanes.
            product = 0
            for pos, sign in csd_digits(L.multiplier):
                product = product + (acc << pos) if sign > 0 else product - (acc << pos)
            scaled = Signal(signed(L.acc_bits + max(L.multiplier.bit_length(), 1) + 2))
            m.d.comb += scaled.eq((product + (1 << (L.shift - 1))) >> L.shift)
            m.d.comb += self.o.payload.eq(Mux(scaled < 0, 0, Mux(scaled > amax, amax, scaled)))
        else:
            m.d.comb += self.o.payload.eq(acc)
        # A bank fills and drains in the same cycle only with different banks: the writer's
        # `full` set and the serializer's clear touch different bits.
        return m
