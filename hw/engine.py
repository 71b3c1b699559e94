"""The shared-array engine: every layer program (:mod:`slimgen.hw.program`) of a feed-forward
network on one array of P multiply-accumulate lanes and one requantizer::

                ┌──────────── walker (layer, position, group, tap counters) ───────────┐
                │ tap table[ptr] → (off, ky, kx, last)   weights[p][ptr]              │
    i ─> buf 0 ─┤ A: addr = pos_base + off (+ch0), bounds check   read buf[layer % 2] │
         buf 1 ─┤ B: v = inside ? x : 0       prod[p] = v · w[p]       bias[gid] read │
                │ C: acc[p] = (first ? bias[p] : acc[p]) + prod[p]  (max / sum pools)  │
                │    last tap: bank ← acc  ──> drain d = 0 … L−1 (one requantizer):    │
                │ R1: bank[d], M[ch0 + d] read   R2: clamp(requantize(·, M, shift))   │
                └ R3: buf[(layer + 1) % 2][out + d] ← y   (last layer: logits[d]) ─────┘
    logits ─> Argmax ─> o {cls, logits}

A sample loads into buffer 0 (one input code per transfer, channels-last), the layers run one
after the other between the two buffers, the logits go to the argmax. Per layer the walker
issues one tap a cycle, holding a group's last tap until the drain has finished the previous
group (``cooldown``), and waits ``FLUSH + L`` cycles after its last tap
(:func:`slimgen.hw.program.layer_cycles` counts exactly these cycles).
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from slimgen.sw.fixed import signed_bits

from .lib.argmax import Argmax, result_layout
from .lib.requantizer import requantize
from .program import FLUSH

__all__ = ["Engine"]


def _table(values, index):
    """``values[index]`` for a run-time index: a multiplexer over constants."""
    values = [int(v) for v in values]
    shape = signed(signed_bits(min(values), max(values))) if min(values) < 0 else \
        unsigned(max(1, max(values).bit_length()))
    return Array([Const(v, shape) for v in values])[index]


def _ubits(n):
    return max(1, int(n).bit_length())


class _Tables:
    """The plain-number tables the engine is built from: per-layer constants, the tap table,
    the weight, bias and multiplier memories' contents, and the widths."""

    def __init__(self, programs, lanes, input_bits):
        P = self.P = lanes
        self.programs = programs
        taps, weights, tap_start, bias, mult = [], [[] for _ in range(P)], [], [], []
        gid_base, cidx_base = [], []
        for p in programs:
            tap_start.append(len(taps))
            entries = p.taps
            H, W, C = p.in_shape
            last = set()
            if p.op == "mac":
                k = 0
                for _, _, group in p.groups:
                    k += len(group)
                    last.add(k - 1)
            else:
                last.add(len(entries) - 1)
            for k, (ky, kx, c) in enumerate(entries):
                taps.append(((ky * W + kx) * C + c, ky, kx, k in last))
                for lane in range(P):
                    weights[lane].append(int(p.weights[k, lane]))
            gid_base.append(len(bias))
            if p.op == "mac":
                for ch0, L, _ in p.groups:
                    bias.append([int(v) for v in p.bias[ch0:ch0 + L]] + [0] * (P - L))
            cidx_base.append(len(mult))
            if p.requant:
                mult.extend(int(v) for v in p.multiplier)
        self.taps, self.weights, self.bias, self.mult = taps, weights, bias or [[0] * P], \
            mult or [1]
        self.tap_start, self.gid_base, self.cidx_base = tap_start, gid_base, cidx_base
        self.off_bits = _ubits(max(t[0] for t in taps))
        self.ky_bits = _ubits(max(t[1] for t in taps))
        self.kx_bits = _ubits(max(t[2] for t in taps))
        self.weight_bits = signed_bits(min(min(w) for w in weights), max(max(w) for w in weights))
        self.bias_bits = signed_bits(min(min(b) for b in self.bias), max(max(b) for b in self.bias))
        self.mult_bits = _ubits(max(self.mult))
        ranges = [(0, (1 << input_bits) - 1)] + [(p.lo, p.hi) for p in programs[:-1]]
        self.act_bits = max(signed_bits(lo, hi) for lo, hi in ranges)
        self.acc_bits = max([p.acc_bits for p in programs] + [self.act_bits])
        self.depth = max([programs[0].n_in] + [p.n_out for p in programs[:-1]])
        self.req_bits = max([p.out_bits for p in programs if p.requant] or [2])
        # pos_base + off over every layer: from the most negative corner to past the end
        self.addr_bits = 2 + max(signed_bits(-(p.pad[0] * p.in_shape[1] + p.pad[1])
                                             * p.in_shape[2],
                                             p.n_in + p.out_shape[0] * p.stride * p.in_shape[1]
                                             * p.in_shape[2] + max(t[0] for t in taps))
                                 for p in programs)

    def layer(self, name, index):
        """A per-layer constant (``name`` below) at the run-time layer ``index``."""
        return _table([self._value(name, k, p) for k, p in enumerate(self.programs)], index)

    def _value(self, name, k, p):
        H, W, C = p.in_shape
        OH, OW, CO = p.out_shape
        s, (pt, pl) = p.stride, p.pad
        return {
            "H": p.limit[0], "W": p.limit[1], "OHm1": OH - 1, "OWm1": OW - 1, "CO": CO,
            "Gm1": len(p.groups) - 1, "Lg": p.groups[0][1], "Llast": p.groups[-1][1],
            "s": s, "col_step": s * C, "row_step": s * W * C, "base0": -(pt * W + pl) * C,
            "iy0": -pt, "ix0": -pl, "tap_start": self.tap_start[k], "pool": p.op != "mac",
            "mac": p.op == "mac", "max": p.op == "max", "gid_base": self.gid_base[k],
            "cidx_base": self.cidx_base[k], "requant": p.requant, "shift": max(p.shift, 1),
            "lo": p.lo, "hi": p.hi, "last": k == len(self.programs) - 1,
        }[name]


class Engine(wiring.Component):
    """A whole feed-forward integer network on one shared array (module docstring).

    Parameters
    ----------
    programs : list of LayerProgram
        From :func:`slimgen.hw.program.build_programs`, with ``lanes`` lanes.
    n_inputs, input_bits : int
        Input codes per sample and their (unsigned) width.
    n_classes, logit_bits : int
        The last program's outputs and their signed width.

    Attributes
    ----------
    i : In(stream.Signature(unsigned(input_bits)))
        ``n_inputs`` transfers per sample, channels-last raster order.
    o : Out(stream.Signature(result_layout(n_classes, logit_bits)))
        One transfer per sample.
    """

    def __init__(self, programs, *, n_inputs, input_bits, n_classes, logit_bits):
        if not programs:
            raise ValueError("The engine needs at least one layer program")
        lanes = programs[0].lanes
        if any(p.lanes != lanes for p in programs):
            raise ValueError("Every layer program must have the same lane count")
        self.t = _Tables(programs, lanes, input_bits)
        self.programs, self.lanes = programs, lanes
        self.n_inputs, self.n_classes, self.logit_bits = n_inputs, n_classes, logit_bits
        super().__init__({
            "i": In(stream.Signature(unsigned(input_bits))),
            "o": Out(stream.Signature(result_layout(n_classes, logit_bits))),
        })

    # ------------------------------------------------------------------ memories

    def _memories(self, m):
        t, P = self.t, self.lanes
        tw = t.off_bits + t.ky_bits + t.kx_bits + 1
        words = [off | ky << t.off_bits | kx << (t.off_bits + t.ky_bits)
                 | int(last) << (tw - 1) for off, ky, kx, last in t.taps]
        # depths of at least 2: a 0-bit address is not valid Verilog
        m.submodules.taps = taps = Memory(shape=unsigned(tw), depth=max(2, len(words)),
                                          init=words)
        mems = {"taps": taps.read_port(), "w": [], "buf": []}
        for lane in range(P):
            wm = Memory(shape=signed(t.weight_bits), depth=max(2, len(words)),
                        init=t.weights[lane])
            m.submodules[f"weights{lane}"] = wm
            mems["w"].append(wm.read_port())
        bias_init = [sum((b & ((1 << t.bias_bits) - 1)) << (lane * t.bias_bits)
                         for lane, b in enumerate(row)) for row in t.bias]
        m.submodules.bias = bm = Memory(shape=unsigned(P * t.bias_bits),
                                        depth=max(2, len(bias_init)), init=bias_init)
        m.submodules.mult = mm = Memory(shape=unsigned(t.mult_bits), depth=max(2, len(t.mult)),
                                        init=t.mult)
        mems["bias"], mems["mult"] = bm.read_port(), mm.read_port()
        for k in range(2):
            am = Memory(shape=signed(t.act_bits), depth=max(2, t.depth), init=[])
            m.submodules[f"buf{k}"] = am
            mems["buf"].append((am.read_port(), am.write_port()))
        return mems

    def _fields(self, word):
        t = self.t
        return (word[:t.off_bits], word[t.off_bits:t.off_bits + t.ky_bits],
                word[t.off_bits + t.ky_bits:-1], word[-1])

    # ------------------------------------------------------------------ the top

    def elaborate(self, platform):
        m = Module()
        mems = self._memories(m)
        m.submodules.argmax = argmax = Argmax(n_classes=self.n_classes,
                                              logit_bits=self.logit_bits)
        wiring.connect(m, argmax.o, wiring.flipped(self.o))
        logits = Array(Signal(signed(self.logit_bits), name=f"logit{k}")
                       for k in range(self.n_classes))
        issue = self._walker(m, mems, logits, argmax.i)
        self._drain(m, mems, self._lanes(m, mems, issue), logits)
        return m

    def _walker(self, m, mems, logits, send):
        """The sequencer (load, layer by layer, send) and stage A of the tap pipeline."""
        t, n_layers = self.t, len(self.programs)
        layer = Signal(range(max(2, n_layers)), name="layer")
        ptr = Signal(range(max(2, len(t.taps))), name="ptr")
        ptr_next = Signal.like(ptr, name="ptr_next")
        g = Signal(range(max(2, max(len(p.groups) for p in self.programs))), name="group")
        ch0 = Signal(range(max(p.out_shape[2] for p in self.programs) + 1), name="ch0")
        oy, ox = Signal(range(2 ** 16), name="oy"), Signal(range(2 ** 16), name="ox")
        iy0, ix0 = Signal(signed(18), name="iy0"), Signal(signed(18), name="ix0")
        row_base = Signal(signed(t.addr_bits), name="row_base")
        pos_base = Signal(signed(t.addr_bits), name="pos_base")
        out_base = Signal(range(t.depth + max(self.n_classes, self.lanes) + 1), name="out_base")
        cooldown = Signal(range(self.lanes + 1), name="cooldown")
        first = Signal(name="first")
        flush = Signal(range(FLUSH + self.lanes + 1), name="flush")
        count = Signal(range(max(self.n_inputs, self.n_classes) + 1), name="count")
        L = lambda name: t.layer(name, layer)     # noqa: E731  (this layer's constant)

        off, ky, kx, e_last = self._fields(mems["taps"].data)
        iy, ix = iy0 + ky, ix0 + kx
        inside = (iy >= 0) & (iy < L("H")) & (ix >= 0) & (ix < L("W"))
        addr = Signal(signed(t.addr_bits + 1), name="tap_addr")
        m.d.comb += addr.eq(pos_base + off + Mux(L("pool"), ch0, 0))
        group_end, pos_end = Signal(), Signal()
        Lcur = Mux(g == L("Gm1"), L("Llast"), L("Lg"))
        issue = {"valid": Signal(name="a_valid"), "inside": inside, "first": first,
                 "last": e_last, "gid": L("gid_base") + g, "L": Lcur,
                 "out": out_base + ch0, "cidx": L("cidx_base") + ch0, "layer": layer}
        run = Signal()
        m.d.comb += [
            mems["taps"].addr.eq(ptr_next), ptr_next.eq(ptr),
            issue["valid"].eq(run & ~(e_last & (cooldown != 0))),
            group_end.eq(issue["valid"] & e_last), pos_end.eq(group_end & (g == L("Gm1"))),
        ]
        m.d.sync += ptr.eq(ptr_next)
        for port in mems["w"]:
            m.d.comb += port.addr.eq(ptr_next)
        for rd, _ in mems["buf"]:
            m.d.comb += rd.addr.eq(addr)

        with m.FSM(name="engine"):
            with m.State("LOAD"):
                wr = mems["buf"][0][1]
                m.d.comb += [self.i.ready.eq(1), wr.addr.eq(count), wr.data.eq(self.i.payload),
                             wr.en.eq(self.i.valid)]
                with m.If(self.i.valid):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == self.n_inputs - 1):
                        m.d.sync += [count.eq(0), layer.eq(0)]
                        m.next = "SETUP"
            with m.State("SETUP"):
                m.d.comb += ptr_next.eq(L("tap_start"))
                m.d.sync += [iy0.eq(L("iy0")), ix0.eq(L("ix0")), row_base.eq(L("base0")),
                             pos_base.eq(L("base0")), out_base.eq(0), g.eq(0), ch0.eq(0),
                             oy.eq(0), ox.eq(0), first.eq(1), cooldown.eq(0)]
                m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += run.eq(1)
                self._advance(m, issue, dict(
                    L=L, ptr=ptr, ptr_next=ptr_next, g=g, ch0=ch0, oy=oy, ox=ox, iy0=iy0,
                    ix0=ix0, row_base=row_base, pos_base=pos_base, out_base=out_base,
                    cooldown=cooldown, first=first, flush=flush, group_end=group_end,
                    pos_end=pos_end))
            with m.State("FLUSH"):
                m.d.sync += flush.eq(flush - 1)
                with m.If(flush == 0):
                    with m.If(L("last")):
                        m.next = "SEND"
                    with m.Else():
                        m.d.sync += layer.eq(layer + 1)
                        m.next = "SETUP"
            with m.State("SEND"):
                m.d.comb += [send.valid.eq(1), send.payload.eq(logits[count])]
                with m.If(send.ready):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == self.n_classes - 1):
                        m.d.sync += count.eq(0)
                        m.next = "LOAD"
        return issue

    def _advance(self, m, issue, v):
        """RUN: the counters after each issued tap (next tap, group, position, layer)."""
        L, ptr, ptr_next, g, ch0 = v["L"], v["ptr"], v["ptr_next"], v["g"], v["ch0"]
        with m.If(issue["valid"]):
            m.d.comb += ptr_next.eq(Mux(issue["last"] & (L("pool") | (g == L("Gm1"))),
                                        L("tap_start"), ptr + 1))
            m.d.sync += v["first"].eq(issue["last"])
        with m.If(v["group_end"]):
            m.d.sync += [v["cooldown"].eq(issue["L"] - 1), g.eq(g + 1), ch0.eq(ch0 + L("Lg"))]
        with m.Elif(v["cooldown"] != 0):
            m.d.sync += v["cooldown"].eq(v["cooldown"] - 1)
        with m.If(v["pos_end"]):
            oy, ox, iy0, ix0 = v["oy"], v["ox"], v["iy0"], v["ix0"]
            row_base, pos_base = v["row_base"], v["pos_base"]
            m.d.sync += [g.eq(0), ch0.eq(0), v["out_base"].eq(v["out_base"] + L("CO"))]
            with m.If(ox == L("OWm1")):
                m.d.sync += [ox.eq(0), ix0.eq(L("ix0")), oy.eq(oy + 1), iy0.eq(iy0 + L("s")),
                             row_base.eq(row_base + L("row_step")),
                             pos_base.eq(row_base + L("row_step"))]
                with m.If(oy == L("OHm1")):
                    m.d.sync += v["flush"].eq(FLUSH + issue["L"] - 1)
                    m.next = "FLUSH"
            with m.Else():
                m.d.sync += [ox.eq(ox + 1), ix0.eq(ix0 + L("s")),
                             pos_base.eq(pos_base + L("col_step"))]

    # ------------------------------------------------------------------ lanes and drain

    def _lanes(self, m, mems, a):
        """Stages B (read, multiply) and C (accumulate) of every lane; a group's last tap
        copies the accumulators to the bank the drain reads. Returns the drain's inputs."""
        t, P = self.t, self.lanes
        b = {"valid": Signal(name="b_valid"), "inside": Signal(name="b_inside"),
             "first": Signal(name="b_first"), "last": Signal(name="b_last"),
             "gid": Signal(range(max(2, len(t.bias))), name="b_gid"),
             "L": Signal(range(P + 1), name="b_L"), "out": Signal(range(2 * t.depth + P + 2),
                                                                   name="b_out"),
             "cidx": Signal(range(len(t.mult) + P + 1), name="b_cidx"),
             "layer": Signal(range(max(2, len(self.programs))), name="b_layer")}
        m.d.sync += [b[k].eq(a[k]) for k in b]
        w = [Signal(signed(t.weight_bits), name=f"b_w{p}") for p in range(P)]
        m.d.sync += [w[p].eq(mems["w"][p].data) for p in range(P)]
        data = Mux(b["layer"][0], mems["buf"][1][0].data, mems["buf"][0][0].data)
        x = Signal(signed(t.act_bits), name="b_x")
        m.d.comb += [x.eq(Mux(b["inside"], data, 0)), mems["bias"].addr.eq(b["gid"])]

        c = {k: Signal.like(v, name=f"c_{k}") for k, v in b.items() if k not in ("inside",
                                                                             "gid")}
        m.d.sync += [c[k].eq(b[k]) for k in c]
        c_x = Signal(signed(t.act_bits), name="c_x")
        prod = [Signal(signed(t.act_bits + t.weight_bits), name=f"c_prod{p}") for p in range(P)]
        m.d.sync += [c_x.eq(x)] + [prod[p].eq(x * w[p]) for p in range(P)]

        is_mac, is_max = t.layer("mac", c["layer"]), t.layer("max", c["layer"])
        acc = [Signal(signed(t.acc_bits), name=f"acc{p}") for p in range(P)]
        bank = [Signal(signed(t.acc_bits), name=f"bank{p}") for p in range(P)]
        bias = mems["bias"].data
        for p in range(P):
            bias_p = bias[p * t.bias_bits:(p + 1) * t.bias_bits].as_signed()
            pooled = Mux(c["first"], c_x, Mux(is_max, Mux(c_x > acc[p], c_x, acc[p]),
                                               acc[p] + c_x))
            nxt = Signal(signed(t.acc_bits), name=f"acc{p}_next")
            m.d.comb += nxt.eq(Mux(is_mac, Mux(c["first"], bias_p, acc[p]) + prod[p], pooled))
            with m.If(c["valid"]):
                m.d.sync += acc[p].eq(nxt)
                with m.If(c["last"]):
                    m.d.sync += bank[p].eq(nxt)
        start = c["valid"] & c["last"]
        return {"start": start, "bank": bank, "L": c["L"], "out": c["out"], "cidx": c["cidx"],
                "layer": c["layer"]}

    def _drain(self, m, mems, c, logits):
        """The one requantizer draining the bank, lane by lane: R1 (select, read M), R2
        (requantize, clamp to the layer's range), R3 (write the next buffer or a logit)."""
        t, P = self.t, self.lanes
        active = Signal(name="d_active")
        d = Signal(range(max(2, P)), name="d")
        meta = {k: Signal.like(c[k], name=f"d_{k}") for k in ("L", "out", "cidx", "layer")}
        r = {"valid": Signal(name="r_valid"), "sel": Signal(signed(t.acc_bits), name="r_sel"),
             "addr": Signal.like(meta["out"], name="r_addr"),
             "layer": Signal.like(meta["layer"], name="r_layer")}
        m.d.comb += mems["mult"].addr.eq(meta["cidx"] + d)
        m.d.sync += [r["valid"].eq(active), r["sel"].eq(Array(c["bank"])[d]),
                     r["addr"].eq(meta["out"] + d), r["layer"].eq(meta["layer"])]
        with m.If(active):
            m.d.sync += d.eq(d + 1)
            with m.If(d == meta["L"] - 1):
                m.d.sync += active.eq(0)
        with m.If(c["start"]):           # after the above: a new group starts as one ends
            m.d.sync += [active.eq(1), d.eq(0)] + [meta[k].eq(c[k]) for k in meta]

        lay = r["layer"]
        y_req = requantize(m, r["sel"], mems["mult"].data, t.layer("shift", lay),
                           out_bits=t.req_bits, relu=False, name="requant")
        y = Signal(signed(max(t.acc_bits, t.req_bits)), name="r_y")
        lo, hi = t.layer("lo", lay), t.layer("hi", lay)
        m.d.comb += y.eq(Mux(t.layer("requant", lay), y_req, r["sel"]))
        w = {"valid": Signal(name="w_valid"), "addr": Signal.like(r["addr"], name="w_addr"),
             "layer": Signal.like(lay, name="w_layer"),
             "data": Signal(signed(max(t.act_bits, self.logit_bits)), name="w_data")}
        m.d.sync += [w["valid"].eq(r["valid"]), w["addr"].eq(r["addr"]), w["layer"].eq(lay),
                     w["data"].eq(Mux(y < lo, lo, Mux(y > hi, hi, y)))]

        last = t.layer("last", w["layer"])
        for k, (_, wr) in enumerate(mems["buf"]):
            target = w["valid"] & ~last & (w["layer"][0] != k)
            with m.If(target):
                m.d.comb += [wr.addr.eq(w["addr"]), wr.data.eq(w["data"]), wr.en.eq(1)]
        with m.If(w["valid"] & last):
            m.d.sync += logits[w["addr"]].eq(w["data"])
