"""Dataflow pipeline: a feed-forward network's layers as stages, each on a shared-array
engine of its own (:class:`slimgen.hw.engine.Engine`), with queues between them::

    i ─> Engine 0 (layers of stage 0, P₀ lanes) ─> queue ─> Engine 1 (P₁ lanes) ─> queue ─> …
         … ─> Engine S−1 ─> argmax ─> o {cls, logits}

Every stage works on a sample of its own, so several samples are in flight: results follow
each other every :attr:`Dataflow.interval` cycles, the slowest stage's, while a sample takes
:attr:`Dataflow.cycles` through. A stage is a weighted layer (convolution or dense) with the
pools after it (:func:`stage_bounds`); its last layer runs direct (or on Winograd with its
max pool in the drain, :func:`~slimgen.hw.program.fuse_pool`), since its outputs go to the
next stage in address order, one per transfer, which is how that stage loads its inputs. A
stage's queue holds ``Q`` words (by default two of its output maps, :data:`QUEUE_MAPS`): the
stage holds a group of its last layer from ending while the queue has fewer words free than
the group drains, so nothing is lost when a later stage (or the consumer of ``o``) is slow,
and with two maps a stage faster than the slowest can run a whole sample ahead, so the
slowest stage never waits for its inputs (checked in simulation, with a consumer sometimes
not ready too).

A stage whose lanes no longer shorten it (an engine's lanes share a position's output
channels: conv 4→8 on 8 lanes is as fast as it gets) can run on R copies of its engine
(:class:`Replicas`) that take samples in turn: R samples in flight in that stage, the
weights in each copy's memories.

The cycle model (:func:`dataflow_cycles`): each stage's schedule
(:func:`slimgen.hw.program.schedule`) with its inputs arriving as the stage before writes
them into its queue, :data:`QUEUE_LATENCY` cycles later at the earliest and one a cycle, for
the latency; for the interval, each stage alone with its inputs one a cycle: from its first
input to its last output, plus the cycle its loader restarts, over its copies
(:func:`replicated_interval`).
"""

import numpy as np
from amaranth.hdl import Array, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.fixed import signed_bits

from .lib.argmax import result_layout
from .program import schedule

__all__ = ["Dataflow", "Replicas", "stage_bounds", "stage_interval", "replicated_interval", "dataflow_cycles", "QUEUE_LATENCY", "QUEUE_MAPS"]

#: Cycles from a word's write into a stage's queue to the first cycle the next stage may take
#: it (:class:`amaranth.lib.fifo.SyncFIFOBuffered`: the memory's read and its output
#: register).
QUEUE_LATENCY = 2
#: A stage's queue holds this many of its output maps by default.
QUEUE_MAPS = 2


def stage_bounds(programs):
    """``[(start, stop), ...]``: the programs of each stage, a new one at every weighted
    program (``"mac"``, ``"wino"``) but the first; a pool stays with the layer before."""
    starts = [0] + [k for k, p in enumerate(programs) if k and p.op in ("mac", "wino")]
    return list(zip(starts, starts[1:] + [len(programs)]))


def _input_shape(prev):
    """(bits, signed) of a stage's input codes: the previous stage's last layer's range."""
    if prev.lo >= 0:
        return max(1, int(prev.hi).bit_length()), False
    return signed_bits(prev.lo, prev.hi), True


def stage_interval(programs):
    """Cycles between a stage's samples, its inputs one a cycle: from its first input to
    its last output (into its queue, or to the argmax), and the cycle its loader restarts."""
    return int(schedule(programs, programs[0].n_in)[1][-1].max()) + 1


def replicated_interval(interval, copies, n_in, n_out):
    """The mean cycles between samples on ``copies`` copies of an engine (:class:`Replicas`;
    a dataflow stage's, or a whole design's), one copy's being ``interval``: the copies take
    samples in turn, their words one a cycle through the turn-takers, so at least the input
    words (``n_in``) and output words (``n_out``, 1 for a result) a sample::

        interval / copies ∨ n_in ∨ n_out

    (an int when it is whole; the results on copies come in a pattern that repeats every
    ``copies`` samples, this the mean over it)."""
    if copies == 1:
        return interval
    mean = max(interval / copies, n_in, n_out)
    return int(mean) if mean == int(mean) else mean


def dataflow_cycles(stages, n_inputs):
    """``(latency, stage_intervals)`` of the pipeline of ``stages`` (lists of layer
    programs): the latency from the first input transfer to the result's, both counted,
    the pipeline idle before and ``o`` ready; per stage, the cycles between its samples with
    its inputs one a cycle (the interval is their largest)."""
    arrivals = np.arange(n_inputs, dtype=np.int64)    # absolute cycles, from the first input
    intervals = []
    for k, programs in enumerate(stages):
        start = int(arrivals[0])
        writes = schedule(programs, len(arrivals), arrivals - start)[1][-1]
        intervals.append(stage_interval(programs))
        if k == len(stages) - 1:
            latency = start + int(writes.max()) + 2    # the argmax's result, a cycle on
        else:       # the next stage takes word j once it is out of the queue, one a cycle
            ready = start + writes + QUEUE_LATENCY
            arrivals = np.maximum.accumulate(ready - np.arange(len(ready))) \
                + np.arange(len(ready))
    return latency, intervals


class Dataflow(wiring.Component):
    """A feed-forward integer network as a pipeline of engines (module docstring).

    Parameters
    ----------
    stages : list of list of LayerProgram
        Each stage's programs (:func:`slimgen.hw.program.build_programs` on the stage's
        lanes, sliced by :func:`stage_bounds`); a stage's last program runs direct, or on
        Winograd with its max pool in the drain.
    n_inputs, input_bits, n_classes, logit_bits : int
        As :class:`~slimgen.hw.engine.Engine`'s.
    queues : sequence of int or None
        Each stage's queue depth but the last's (default :data:`QUEUE_MAPS` output maps).

    Attributes
    ----------
    i : In(stream.Signature(unsigned(input_bits)))
    o : Out(stream.Signature(result_layout(n_classes, logit_bits)))
        As the engine's: ``n_inputs`` transfers per sample in, one result out.
    """

    def __init__(self, stages, *, n_inputs, input_bits, n_classes, logit_bits, queues=None,
                 replicas=None):
        from .engine import Engine
        if not stages or any(not s for s in stages):
            raise ValueError("A dataflow pipeline needs at least one stage, each with a layer")
        queues = [QUEUE_MAPS * s[-1].n_out for s in stages[:-1]] if queues is None \
            else list(queues)
        if len(queues) != len(stages) - 1:
            raise ValueError(f"Give one queue depth per stage but the last "
                             f"({len(stages) - 1}), not {len(queues)}")
        replicas = [1] * len(stages) if replicas is None else list(replicas)
        if len(replicas) != len(stages) or any(
                isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in replicas):
            raise ValueError(f"Give one replica count (a positive integer) per stage "
                             f"({len(stages)}), not {replicas!r}")
        self.stages, self.queues, self.n_inputs = [list(s) for s in stages], queues, n_inputs
        self.replicas = replicas
        self.engines, bits, signed_in = [], input_bits, False
        for k, programs in enumerate(self.stages):
            last = k == len(self.stages) - 1
            copies = [Engine(programs, n_inputs=programs[0].n_in, input_bits=bits,
                             input_signed=signed_in, n_classes=n_classes,
                             logit_bits=logit_bits, queue=None if last else queues[k])
                      for _ in range(replicas[k])]
            self.engines.append(copies[0] if len(copies) == 1 else Replicas(
                copies, n_in=programs[0].n_in, n_out=1 if last else programs[-1].n_out))
            bits, signed_in = _input_shape(programs[-1])
        self.stage_lanes = [s[0].lanes * r for s, r in zip(self.stages, replicas)]
        self.cycles, intervals = dataflow_cycles(self.stages, n_inputs)
        self.stage_intervals = [
            replicated_interval(i, r, s[0].n_in, 1 if k == len(stages) - 1 else s[-1].n_out)
            for k, (i, r, s) in enumerate(zip(intervals, replicas, self.stages))]
        super().__init__({
            "i": In(stream.Signature(self.engines[0].i.payload.shape())),
            "o": Out(stream.Signature(result_layout(n_classes, logit_bits))),
        })

    @property
    def interval(self):
        """Cycles between results with samples back to back (inputs always valid, ``o``
        always ready), in the steady state: the slowest stage's; with copies, the mean over
        the pattern the results repeat (every lcm of the copies samples)."""
        return max(self.stage_intervals)

    @property
    def multipliers(self):
        """Every stage's lanes."""
        return sum(self.stage_lanes)

    @property
    def lanes(self):
        """The lanes of every stage in all (the engine's ``lanes``: its multipliers)."""
        return self.multipliers

    def elaborate(self, platform):
        m = Module()
        for k, engine in enumerate(self.engines):
            m.submodules[f"stage{k}"] = engine
        wiring.connect(m, wiring.flipped(self.i), self.engines[0].i)
        for a, b in zip(self.engines, self.engines[1:]):
            wiring.connect(m, a.o, b.i)
        wiring.connect(m, self.engines[-1].o, wiring.flipped(self.o))
        return m


class Replicas(wiring.Component):
    """R copies of a stage's engine taking samples in turn: sample s goes to copy s mod R
    (its ``n_in`` input words), and its ``n_out`` output words (1: a result) come from that
    copy, so the order of samples is kept::

        i ─> turn (n_in words a sample) ─> copy 0 … copy R−1 ─> turn (n_out words) ─> o
    """

    def __init__(self, engines, *, n_in, n_out):
        self.copies, self.n_in, self.n_out = list(engines), n_in, n_out
        super().__init__({
            "i": In(stream.Signature(self.copies[0].i.payload.shape())),
            "o": Out(stream.Signature(self.copies[0].o.payload.shape())),
        })

    def elaborate(self, platform):
        m = Module()
        R = len(self.copies)
        for r, engine in enumerate(self.copies):
            m.submodules[f"copy{r}"] = engine
        for port, n, outward in (("i", self.n_in, False), ("o", self.n_out, True)):
            turn = Signal(range(R), name=f"{port}_turn")
            count = Signal(range(max(2, n)), name=f"{port}_count")    # not 0 bits wide
            ends = [getattr(e, port) for e in self.copies]
            outer = getattr(self, port)
            if outward:            # the copy whose turn it is gives the next word
                m.d.comb += [outer.valid.eq(Array(e.valid for e in ends)[turn]),
                             Value.cast(outer.payload).eq(
                                 Array(Value.cast(e.payload) for e in ends)[turn])]
                m.d.comb += [e.ready.eq(outer.ready & (turn == r)) for r, e in enumerate(ends)]
            else:                  # the copy whose turn it is takes the next word
                m.d.comb += [outer.ready.eq(Array(e.ready for e in ends)[turn])]
                m.d.comb += [e.payload.eq(outer.payload) for e in ends]
                m.d.comb += [e.valid.eq(outer.valid & (turn == r)) for r, e in enumerate(ends)]
            with m.If(outer.valid & outer.ready):
                m.d.sync += count.eq(Mux(count == n - 1, 0, count + 1))
                with m.If(count == n - 1):
                    m.d.sync += turn.eq(Mux(turn == R - 1, 0, turn + 1))
        return m
