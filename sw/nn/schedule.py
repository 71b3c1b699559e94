"""Learning-rate schedules: the factor that multiplies the base learning rate at each step.

Every schedule is a function ``factor(step, total)`` of the step index (0-based) and the total
number of steps, with an optional linear warm-up over the first ``warmup`` steps:

- ``"constant"``: 1;
- ``"cosine"``: ``½ (1 + cos(π · t / total))``, from 1 down to 0;
- ``"step"``: ``gamma ** ⌊t / (total / n_drops)⌋`` with ``n_drops = 3``, ``gamma = 0.1`` by default
  (the learning rate drops tenfold at 1/3 and 2/3 of training);
- ``"linear"``: ``1 − t / total``.
"""

import math

__all__ = ["lr_factor", "SCHEDULES"]

SCHEDULES = ("constant", "cosine", "step", "linear")


def lr_factor(schedule, step, total, *, warmup=0, gamma=0.1, n_drops=3):
    """Factor for the learning rate at ``step`` of ``total`` (see module docstring)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"Schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
    if warmup and step < warmup:
        return (step + 1) / warmup
    t, total = step - warmup, max(total - warmup, 1)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(t / total, 1.0)))
    if schedule == "linear":
        return max(1.0 - t / total, 0.0)
    return gamma ** math.floor(t * n_drops / total)
