"""Where an engine keeps its lanes' private copies of the activations (``act_memory``).

Each lane of the recurrent engine and of the CNN's shared array reads its operand at its own
address, so it keeps a copy of the activations it reads: the recurrent lane x of every step and
h of two steps (a GRU of 8 × 8 inputs and 32 units: 128 words), the CNN lane the dense layer's
features (128 words on the digits). yosys' memory_libmap puts such a memory where it costs
least: on the ECP5 in LUT RAM (a GRU lane's 128 × 8 bits: about 190 LUTs), on the iCE40 in a
block RAM. ``"bram"`` asks for a block RAM whatever the cost (the ``ram_style`` attribute):
one block a lane, and the LUTs left for more copies of the engine where the logic, not the
block RAMs, limits them.
"""

__all__ = ["ACT_MEMORIES", "act_memory_attrs"]

#: ``"auto"``: where yosys puts the copy by its cost; ``"bram"``: a block RAM a lane.
ACT_MEMORIES = ("auto", "bram")


def act_memory_attrs(act_memory):
    """The attributes of a lane's activation memory for ``act_memory``
    (:data:`ACT_MEMORIES`), or ``ValueError``."""
    if act_memory not in ACT_MEMORIES:
        raise ValueError(f"Activation memory must be one of {', '.join(ACT_MEMORIES)}, not "
                         f"{act_memory!r}")
    return {"ram_style": "block"} if act_memory == "bram" else None
