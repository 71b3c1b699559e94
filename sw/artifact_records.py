"""The records of an integer artifact (:mod:`slimgen.sw.artifact`, version 2): where each
record's arrays go, and the checks that turn the manifest's ``layers`` and the arrays back into
an :class:`~slimgen.sw.integer_model.IntNetwork`.

Arrays (int64): ``layer<i>.W`` and ``layer<i>.b`` of a dense or convolution record ``i``;
``layer<i>.W_<gate>`` and ``layer<i>.b_<gate>`` of a recurrent one, a GRU also
``layer<i>.b_hn``. Pools, flattens and ReLUs have none.

:func:`check_int_network` refuses a file with one :class:`~slimgen.sw.artifact.ArtifactError`
naming the manifest field (``layers[2].shift``) or array, the bad value and what is allowed:

- fields: every field of the record's kind present and none other; integers, flags and scales
  of their type; widths 1 to 16 (weights 2 to 16), multipliers 1 to 2^multiplier_bits − 1 (one,
  or one per output channel), shifts 1 to :data:`~slimgen.sw.fixed.MAX_SHIFT`, pool op, dims,
  size and stride, convolution stride and padding, the recurrent format within
  :data:`~slimgen.sw.network.RECURRENT_FORMAT`;
- arrays: those its records use and no other, int64, of the shape the description gives,
  weights within ``weight_bits``, biases within ``MAX_ACC_BITS``-bit accumulators;
- the chain: records in the description's order (``source`` increasing, each naming a layer
  of its kind; every layer but the input, dropout, batch normalization and a ReLU with nothing
  to do has one); a record's ``in_bits``/``in_signed`` (a pool's or ReLU's ``bits``/``signed``)
  are what the record before it outputs; its fields agree with its layer (stride, padding,
  pool size, the ReLU fused after it, recurrent format, ...); its output has its layer's shape
  (the golden model run shape by shape on a zero sample);
- the golden model's and hardware's limits: accumulators at most
  :data:`~slimgen.sw.integer_model.MAX_ACC_BITS` wide (as the records bound them), every
  requantization product ``acc · M + 2^(shift−1)`` within int64; only the last weighted
  record keeps its accumulators (the logits, a relu record at most after them).
"""

from dataclasses import fields

import numpy as np

from .fixed import MAX_SHIFT, signed_bits, signed_range
from .golden import apply
from .integer_model import (GATES, MAX_ACC_BITS, IntConv, IntDense, IntFlatten, IntNetwork,
                            IntPool, IntRecurrent, IntRelu, RecurrentFormat, act_range,
                            gate_acc_bits, range_acc_bits)
from .network import RECURRENT_FORMAT, NetworkError, check_network, padding_amounts

__all__ = ["RECORDS", "record_arrays", "check_int_network"]

RECORDS = {"dense": IntDense, "conv": IntConv, "pool": IntPool, "flatten": IntFlatten,
           "relu": IntRelu, "recurrent": IntRecurrent}
# the description layers each record kind comes from
SOURCES = {"dense": ("dense",), "conv": ("conv1d", "conv2d"),
           "pool": ("maxpool", "avgpool", "global_avgpool"), "flatten": ("flatten",),
           "relu": ("relu",), "recurrent": ("lstm", "gru")}
# layers that never have a record of their own
_FOLDED = ("dropout", "batchnorm")


def _field_names(kind):
    return [f.name for f in fields(RECORDS[kind]) if f.name not in ("W", "b")]


def _array_names(i, kind, cell=None):
    if kind in ("dense", "conv"):
        return [f"layer{i}.W", f"layer{i}.b"]
    if kind == "recurrent":
        gates = GATES[cell]
        return ([f"layer{i}.W_{g}" for g in gates] + [f"layer{i}.b_{g}" for g in gates]
                + ([f"layer{i}.b_hn"] if cell == "gru" else []))
    return []


def record_arrays(i, rec):
    """The arrays of record ``i`` as the artifact names them, int64."""
    if rec.kind in ("dense", "conv"):
        arrays = {f"layer{i}.W": rec.W, f"layer{i}.b": rec.b}
    elif rec.kind == "recurrent":
        arrays = {**{f"layer{i}.W_{g}": a for g, a in rec.W.items()},
                  **{f"layer{i}.b_{g}": a for g, a in rec.b.items()}}
    else:
        arrays = {}
    return {k: np.asarray(a, dtype=np.int64) for k, a in arrays.items()}


class _Walk:
    """The records of one artifact, checked in order against the description."""

    def __init__(self, check, net, arrays, metas, names, multiplier_bits):
        self.check, self.net, self.arrays, self.names = check, net, arrays, names
        self.kinds = [meta["kind"] for meta in metas]
        self.m_max = (1 << multiplier_bits) - 1
        self.n_records = len(metas)
        # what the next record takes: bits, signedness, the field that declares them
        self.bits, self.signed, self.where = net.input_bits, False, "input_bits"
        self.source = 0          # the description layer of the last record
        self.covered = 0         # the last description layer accounted for

    # ---- fields ---------------------------------------------------------------------------
    def integer(self, i, key, value, lo, hi):
        return self.check.integer(f"layers[{i}].{key}", value, lo, hi)

    def flag(self, i, key, value):
        return self.check.flag(f"layers[{i}].{key}", value)

    def scales(self, i, key, value, n):
        """A positive finite scale, or (``n`` given) one per output channel."""
        if isinstance(value, list) and n is not None:
            if len(value) != n:
                raise self.check.bad_field(f"layers[{i}].{key}", value,
                                           f"a positive finite number or a list of {n} "
                                           f"(one per output channel)")
            return np.array([self.check.scale(f"layers[{i}].{key}[{c}]", v)
                             for c, v in enumerate(value)])
        return self.check.scale(f"layers[{i}].{key}", value)

    def multiplier(self, where, value, n=None):
        """An integer multiplier, or (``n`` given) one per output channel; returns the
        largest."""
        if isinstance(value, list) and n is not None:
            if len(value) != n:
                raise self.check.bad_field(where, value, f"an integer from 1 to {self.m_max} "
                                                         f"or a list of {n} (one per output "
                                                         f"channel)")
            return max(self.check.integer(f"{where}[{c}]", v, 1, self.m_max)
                       for c, v in enumerate(value))
        return self.check.integer(where, value, 1, self.m_max)

    def agree(self, i, key, value, expected, why):
        if value != expected:
            raise self.check.bad_field(f"layers[{i}].{key}", value, f"{expected!r}, {why}")

    def takes(self, i, bits_key, bits, signed_key, signed):
        """The record's input width and signedness are what the record before it gives."""
        if bits != self.bits:
            raise self.check.bad_field(f"layers[{i}].{bits_key}", bits,
                                       f"{self.bits}, the width of its input ({self.where})")
        if signed != self.signed:
            raise self.check.bad_field(f"layers[{i}].{signed_key}", signed,
                                       f"{self.signed}, as its input ({self.where}) is "
                                       f"{'signed' if self.signed else 'unsigned'}")

    def layer(self, j):
        return f"network layer {j} ({self.net.layers[j]['type']})"

    # ---- arrays ---------------------------------------------------------------------------
    def array(self, i, name, shape, why):
        if name not in self.arrays:
            raise self.check.error(f"array {name!r} is missing; layers[{i}] needs "
                                   f"{', '.join(self.names[i])}")
        a = self.arrays[name]
        if a.dtype != np.int64:
            raise self.check.error(f"array {name!r} is of type {a.dtype}; an integer model's "
                                   f"arrays are int64")
        self.check.shape(name, a, shape, why)
        return a

    def bias(self, name, b):
        lo, hi = signed_range(MAX_ACC_BITS)
        self.check.within(name, b, lo, hi,
                          f"{MAX_ACC_BITS}-bit accumulators (the widest slimgen builds)")

    def acc_fits(self, what, bits):
        if bits > MAX_ACC_BITS:
            raise self.check.error(f"{what} needs {bits}-bit accumulators for its weights and "
                                   f"biases; slimgen builds at most {MAX_ACC_BITS}")
        return bits

    def product_fits(self, what, bits, m, shift):
        """``acc · M + 2^(shift−1)`` (requantization) stays within int64 for every
        ``bits``-bit accumulator."""
        top = (1 << (bits - 1)) * m + (1 << (shift - 1))
        if top >= 1 << 63:
            raise self.check.error(f"{what} requantizes {bits}-bit accumulators with multiplier "
                                   f"{m} and shift {shift}: acc · M + 2^(shift−1) can reach "
                                   f"{top}, beyond the golden model's 64-bit integers")

    # ---- the order of records against the description -------------------------------------
    def skip_to(self, i, end):
        """Account for the description layers after the last one covered up to ``end``
        (exclusive): only dropout, batchnorm and a ReLU on unsigned values go without a
        record."""
        for j in range(self.covered + 1, end):
            kind = self.net.layers[j]["type"]
            if kind in _FOLDED or (kind == "relu" and not self.signed):
                continue
            if kind == "relu":
                why = (f"its input ({self.where}) is signed: it needs a relu record, or the "
                       f"ReLU fused into the layer before it")
            elif i < self.n_records:
                why = (f"layers[{i}] comes from network layer {end}"
                       + (f", layers[{i - 1}] from network layer {self.source}" if i else ""))
            else:
                why = (f"the last record, layers[{i - 1}], comes from network layer "
                       f"{self.source}")
            raise self.check.error(f"{self.layer(j)} has no record: {why}")

    def start(self, i, meta, kind):
        """Record i's ``source``: the next description layer of its kind."""
        last = len(self.net.layers) - 1
        lo = self.covered + 1
        if lo > last:
            raise self.check.error(f"layers[{i}] has no description layer left: the network "
                                   f"has {last + 1} layers and layers[{i - 1}] accounts for "
                                   f"the last")
        j = self.integer(i, "source", meta["source"], lo, last)
        if self.net.layers[j]["type"] not in SOURCES[kind]:
            raise self.check.bad_field(f"layers[{i}].source", j,
                                       f"the index of a {' or '.join(SOURCES[kind])} layer of "
                                       f"its network description; {self.layer(j)} is not")
        self.skip_to(i, j)
        return j

    # ---- record kinds ---------------------------------------------------------------------
    def weighted(self, i, meta, kind, j):
        layer, shape_in = self.net.layers[j], self.net.shapes[j - 1]
        dense = kind == "dense"
        n_out = layer["units"] if dense else layer["channels"]
        requant = self.flag(i, "requant", meta["requant"])
        relu = self.flag(i, "relu", meta["relu"])
        in_signed = self.flag(i, "in_signed", meta["in_signed"])
        in_bits = self.integer(i, "in_bits", meta["in_bits"], 1, 16)
        wb = self.integer(i, "weight_bits", meta["weight_bits"], 2, 16)
        out_bits = self.integer(i, "out_bits", meta["out_bits"], 1,
                                16 if requant else MAX_ACC_BITS)
        m = self.multiplier(f"layers[{i}].multiplier", meta["multiplier"], n_out)
        shift = self.integer(i, "shift", meta["shift"], 1, MAX_SHIFT)
        self.scales(i, "in_scale", meta["in_scale"], None)
        self.scales(i, "out_scale", meta["out_scale"], None)
        w_scale = self.scales(i, "w_scale", meta["w_scale"], n_out)
        # the description's layer
        end = j
        while end + 1 < len(self.net.layers) and self.net.layers[end + 1]["type"] in _FOLDED:
            end += 1
        fused = end + 1 < len(self.net.layers) and self.net.layers[end + 1]["type"] == "relu"
        if not requant and any(k != "relu" for k in self.kinds[i + 1:]):
            raise self.check.bad_field(f"layers[{i}].requant", requant,
                                       "true: only the last weighted record keeps its "
                                       "accumulators (the logits, a relu record at most after "
                                       "them)")
        if requant:
            self.agree(i, "relu", relu, fused, f"as {self.layer(j)} is "
                                               f"{'' if fused else 'not '}followed by a relu")
        else:
            self.agree(i, "relu", relu, False, "as a record that does not requantize has no "
                                               "ReLU (a relu record follows it)")
        if dense:
            W_shape = (n_out, shape_in[0])
            why = f"(outputs, inputs) of {self.layer(j)} on its {shape_in[0]} inputs"
        else:
            W_shape = self.conv(i, meta, j, n_out)
            why = f"(out channels, in channels, *kernel) of {self.layer(j)}"
        self.takes(i, "in_bits", in_bits, "in_signed", in_signed)
        # arrays
        W = self.array(i, f"layer{i}.W", W_shape, why)
        b = self.array(i, f"layer{i}.b", (n_out,), f"one bias per output of layer{i}.W")
        self.check.weights(f"layer{i}.W", W, wb, f"layers[{i}].weight_bits")
        self.bias(f"layer{i}.b", b)
        has_bias = dense or layer["bias"] or (j + 1 < len(self.net.layers)
                                              and self.net.layers[j + 1]["type"] == "batchnorm")
        if not has_bias and b.any():
            c = int(np.flatnonzero(b)[0])
            raise self.check.error(f"array 'layer{i}.b' holds {b[c]} at index {c}; "
                                   f"{self.layer(j)} has no bias (bias false), so every entry "
                                   f"must be 0")
        acc = self.acc_fits(f"layers[{i}]", range_acc_bits(W, b, *act_range(in_bits,
                                                                             in_signed)))
        if requant:
            self.product_fits(f"layers[{i}]", acc, m, shift)
        elif out_bits != acc:
            raise self.check.bad_field(f"layers[{i}].out_bits", out_bits,
                                       f"{acc}, the exact accumulator width of its weights and "
                                       f"biases (a record that does not requantize outputs "
                                       f"its accumulators)")
        args = {k: v for k, v in meta.items() if k != "kind"}
        args["w_scale"] = w_scale
        rec = self.make(i, RECORDS[kind], W=W, b=b, **args)
        if requant:
            self.bits, self.signed, self.where = out_bits, not relu, f"layers[{i}].out_bits"
            return rec, (end + 1 if fused else end)
        # the logits: a ReLU after them is a record of its own
        self.bits, self.signed, self.where = acc, True, f"the accumulators of layers[{i}]"
        return rec, end

    def conv(self, i, meta, j, n_out):
        """A convolution's stride and padding, as its layer has them; the shape of its W."""
        layer, shape_in = self.net.layers[j], self.net.shapes[j - 1]
        dims, k = len(shape_in) - 1, layer["kernel"]
        stride = self.integer(i, "stride", meta["stride"], 1, 2)
        pad = meta["pad"]
        if not isinstance(pad, list) or len(pad) != dims or \
                not all(isinstance(p, list) and len(p) == 2 for p in pad):
            raise self.check.bad_field(f"layers[{i}].pad", pad, f"a list of {dims} [before, "
                                                                f"after] pairs (one per "
                                                                f"spatial axis)")
        for a, p in enumerate(pad):
            for s, v in enumerate(p):
                self.integer(i, f"pad[{a}][{s}]", v, 0, k - 1)
        self.agree(i, "stride", stride, layer["stride"], f"the stride of {self.layer(j)}")
        expected = [list(padding_amounts(size, k, layer["stride"], layer["padding"]))
                    for size in shape_in[:-1]]
        self.agree(i, "pad", pad, expected, f"the padding of {self.layer(j)} "
                                            f"({layer['padding']!r} on {shape_in[:-1]})")
        return (n_out, shape_in[-1], *(k,) * dims)

    def pool(self, i, meta, j):
        layer, shape_in = self.net.layers[j], self.net.shapes[j - 1]
        op = meta["op"]
        if op not in ("max", "avg"):
            raise self.check.bad_field(f"layers[{i}].op", op, "'max' or 'avg'")
        dims = self.integer(i, "dims", meta["dims"], 1, 2)
        size = self.integer(i, "size", meta["size"], 1, 64)
        stride = self.integer(i, "stride", meta["stride"], 1, 64)
        glob = self.flag(i, "global_", meta["global_"])
        bits = self.integer(i, "bits", meta["bits"], 1, 16)
        signed = self.flag(i, "signed", meta["signed"])
        m = self.multiplier(f"layers[{i}].multiplier", meta["multiplier"])
        shift = self.integer(i, "shift", meta["shift"], 1, MAX_SHIFT)
        kind = layer["type"]
        says = f"as {self.layer(j)} says"
        self.agree(i, "op", op, "max" if kind == "maxpool" else "avg", says)
        self.agree(i, "global_", glob, kind == "global_avgpool", says)
        self.agree(i, "dims", dims, len(shape_in) - 1, f"the spatial axes of its input "
                                                       f"{tuple(shape_in)}")
        if not glob:
            self.agree(i, "size", size, layer["size"], f"the size of {self.layer(j)}")
            self.agree(i, "stride", stride, layer["stride"], f"the stride of {self.layer(j)}")
        self.takes(i, "bits", bits, "signed", signed)
        if op == "avg":
            count = int(np.prod(shape_in[:-1])) if glob else size ** dims
            lo, hi = act_range(bits, signed)
            self.product_fits(f"layers[{i}]", signed_bits(count * lo, count * hi), m, shift)
        self.where = f"layers[{i}].bits"
        return self.make(i, IntPool, **{k: v for k, v in meta.items() if k != "kind"}), j

    def relu(self, i, meta, j):
        bits = self.integer(i, "bits", meta["bits"], 1, MAX_ACC_BITS)   # after logits: wide
        if not self.signed:
            raise self.check.error(f"layers[{i}] is a relu on unsigned inputs ({self.where}); "
                                   f"a relu record is only for signed ones")
        if bits != self.bits:
            raise self.check.bad_field(f"layers[{i}].bits", bits,
                                       f"{self.bits}, the width of its input ({self.where})")
        self.signed, self.where = False, f"layers[{i}].bits"
        return IntRelu(bits=bits, source=j), j

    def recurrent(self, i, meta, j):
        layer, shape_in = self.net.layers[j], self.net.shapes[j - 1]
        cell = meta["cell"]
        self.agree(i, "cell", cell, layer["type"], f"as {self.layer(j)} says")
        fmt = meta["fmt"]
        if not isinstance(fmt, dict) or set(fmt) != set(RECURRENT_FORMAT):
            raise self.check.bad_field(f"layers[{i}].fmt", fmt,
                                       f"an object with {', '.join(RECURRENT_FORMAT)}")
        for key, (_, lo, hi) in RECURRENT_FORMAT.items():
            self.integer(i, f"fmt.{key}", fmt[key], lo, hi)
            self.agree(i, f"fmt.{key}", fmt[key], layer[key], f"the {key} of {self.layer(j)}")
        fmt = RecurrentFormat(**fmt)
        gates = GATES[cell]
        for key in ("multiplier", "shift"):
            if not isinstance(meta[key], dict) or set(meta[key]) != set(gates):
                raise self.check.bad_field(f"layers[{i}].{key}", meta[key],
                                           f"an object with one entry per gate "
                                           f"({', '.join(gates)})")
        M = {g: self.multiplier(f"layers[{i}].multiplier.{g}", meta["multiplier"][g])
             for g in gates}
        S = {g: self.integer(i, f"shift.{g}", meta["shift"][g], 1, MAX_SHIFT) for g in gates}
        in_bits = self.integer(i, "in_bits", meta["in_bits"], 1, 16)
        in_signed = self.flag(i, "in_signed", meta["in_signed"])
        wb = self.integer(i, "weight_bits", meta["weight_bits"], 2, 16)
        cwb = self.integer(i, "c_weight_bits", meta["c_weight_bits"], 2, 16)
        sequences = self.flag(i, "sequences", meta["sequences"])
        self.scales(i, "in_scale", meta["in_scale"], None)
        self.agree(i, "sequences", sequences, layer["sequences"], f"as {self.layer(j)} says")
        self.takes(i, "in_bits", in_bits, "in_signed", in_signed)
        # arrays
        H, n_in = layer["hidden"], shape_in[-1]
        W, b = {}, {}
        for g in gates:
            W[g] = self.array(i, f"layer{i}.W_{g}", (H, n_in + H),
                              f"(hidden, inputs + hidden) of {self.layer(j)}")
            bits, where = (cwb, "c_weight_bits") if (cell, g) == ("lstm", "c") else \
                (wb, "weight_bits")
            self.check.weights(f"layer{i}.W_{g}", W[g], bits, f"layers[{i}].{where}")
        for g in gates + (("hn",) if cell == "gru" else ()):
            b[g] = self.array(i, f"layer{i}.b_{g}", (H,), f"one bias per hidden unit of "
                                                      f"{self.layer(j)}")
            self.bias(f"layer{i}.b_{g}", b[g])
        # what each gate requantizes, as IntRecurrent.acc_bits bounds it: v = [x; h] with x
        # in its range and h signed h_bits; the GRU candidate (W_x x + b_n) · 2^F + r · (W_h h
        # + b_hn) with r in [0, 2^F]
        for g in gates:
            bits = gate_acc_bits(cell, fmt, W, b, in_bits, in_signed, g)
            self.acc_fits(f"layers[{i}] gate {g!r}", bits)
            self.product_fits(f"layers[{i}] gate {g!r}", bits, M[g], S[g])
        rec = self.make(i, IntRecurrent, cell, fmt, W, b, M, S, in_bits=in_bits,
                        in_signed=in_signed, weight_bits=wb, c_weight_bits=cwb,
                        sequences=sequences, source=j, in_scale=meta["in_scale"])
        self.bits, self.signed, self.where = fmt.h_bits, True, f"layers[{i}].fmt.h_frac + 1"
        return rec, j

    def make(self, i, cls, *args, **kw):
        """The record, every field checked; its own refusal (a check above missed) still
        names the file."""
        try:
            return cls(*args, **kw)
        except (ValueError, TypeError) as e:
            raise self.check.error(f"layers[{i}] is inconsistent: {e}") from None

    def record(self, i, meta):
        kind = meta["kind"]
        j = self.start(i, meta, kind)
        if kind in ("dense", "conv"):
            rec, end = self.weighted(i, meta, kind, j)
        elif kind == "pool":
            rec, end = self.pool(i, meta, j)
        elif kind == "relu":
            rec, end = self.relu(i, meta, j)
        elif kind == "recurrent":
            rec, end = self.recurrent(i, meta, j)
        else:
            rec, end = IntFlatten(source=j), j
        # the golden model on one zero sample gives the description's shape
        x = np.zeros((1, *self.net.shapes[j - 1]), dtype=np.int64)
        shape = tuple(apply(rec, x).shape[1:])
        if shape != tuple(self.net.shapes[j]):
            raise self.check.error(f"layers[{i}] gives outputs of shape {shape}, but "
                                   f"{self.layer(j)} gives {tuple(self.net.shapes[j])}")
        self.source, self.covered = j, end
        return rec


def _kinds(check, metas):
    """Every record's kind (and cell) with its fields present and none unknown; returns the
    names of every record's arrays."""
    names = []
    for i, meta in enumerate(metas):
        if not isinstance(meta, dict):
            raise check.bad_field(f"layers[{i}]", meta, "an object with the record's kind and "
                                                        "fields")
        kind = meta.get("kind")
        if not isinstance(kind, str) or kind not in RECORDS:
            raise check.bad_field(f"layers[{i}].kind", kind,
                                  f"one of {', '.join(map(repr, RECORDS))}")
        allowed = ["kind", *_field_names(kind)]
        missing = [k for k in allowed if k not in meta]
        unknown = [k for k in meta if k not in allowed]
        if missing or unknown:
            what = "is missing" if missing else "is not known"
            raise check.error(f"manifest field 'layers[{i}].{(missing or unknown)[0]}' {what}; "
                              f"a {kind} record has {', '.join(allowed)}")
        cell = meta.get("cell")
        if kind == "recurrent" and (not isinstance(cell, str) or cell not in GATES):
            raise check.bad_field(f"layers[{i}].cell", cell, "'lstm' or 'gru'")
        names.append(_array_names(i, kind, cell))
    return names


def check_int_network(check, manifest, arrays):
    """The :class:`IntNetwork` of a version-2 integer artifact's manifest and arrays, every
    field and array checked (``check`` a :class:`slimgen.sw.artifact.Checks`)."""
    try:
        net = check_network(check.field(manifest, "network"))
    except NetworkError as e:
        raise check.error(f"its network description (manifest field 'network') is wrong: "
                          f"{e}") from None
    input_scale = check.scale("input_scale", check.field(manifest, "input_scale"))
    input_bits = check.integer("input_bits", check.field(manifest, "input_bits"), 1, 16)
    if input_bits != net.input_bits:
        raise check.bad_field("input_bits", input_bits, f"{net.input_bits}, the bits of its "
                                                        f"network's input layer")
    config = check.field(manifest, "quant_config")
    if not isinstance(config, dict):
        raise check.bad_field("quant_config", config, "an object with multiplier_bits")
    mb = check.integer("quant_config.multiplier_bits",
                       check.field(config, "multiplier_bits", "quant_config"), 4, 24)
    order = manifest.get("input_order")
    if order is not None:
        from .sparse_layout import check_order
        try:
            order = check_order(order, net.n_inputs)
        except ValueError as e:
            text = str(e)
            raise check.error(f"manifest field 'input_order' is wrong: "
                              f"{text[0].lower()}{text[1:]}") from None
    metas = check.field(manifest, "layers")
    if not isinstance(metas, list) or not metas:
        raise check.bad_field("layers", metas, "a list of one or more records")
    names = _kinds(check, metas)
    walk = _Walk(check, net, arrays, metas, names, mb)
    records = [walk.record(i, meta) for i, meta in enumerate(metas)]
    walk.skip_to(len(metas), len(net.layers))
    used = [name for n in names for name in n]
    for name in sorted(set(arrays) - set(used)):
        raise check.error(f"array {name!r} belongs to no record; its records use "
                          f"{', '.join(used) or 'no arrays'}")
    return IntNetwork(net, tuple(records), input_scale, input_bits, dict(config),
                      input_order=order)
