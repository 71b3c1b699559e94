"""Reusable gateware: one idea per module, written once and composed by the layer units.

- :mod:`.const_mul` — products by constants as shift-add networks (canonical signed digits);
- :mod:`.requantizer` — accumulators to activations: round half up, ReLU, saturation;
- :mod:`.argmax` — the result layout and the stream argmax of the classifier tops.

Leaves take plain numbers and add logic to a module ``m`` (functions) or are
:class:`amaranth.lib.wiring.Component` s with stream ports (units).
"""
