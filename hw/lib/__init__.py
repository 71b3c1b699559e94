"""Reusable gateware: one idea per module, written once and composed by the layer units.

- :mod:`.const_mul` — products by constants as shift-add networks (canonical signed digits);
- :mod:`.requantizer` — accumulators to activations: round half up, ReLU, saturation;
- :mod:`.mac_lane` — the MAC lane: registered product, running sum restarting on a row's first;
- :mod:`.argmax` — the result layout, the running argmax and the stream argmax unit;
- :mod:`.transform` — constant matrix × vector units, 1-D and 2-D (the Winograd transforms);
- :mod:`.polynomial` — residue (fold) and CRT units, the folded 2-D transform;
- :mod:`.act_memory` — where lanes keep their copies of the activations (yosys' ``ram_style``).

Leaves take plain numbers and add logic to a module ``m`` (functions) or are
:class:`amaranth.lib.wiring.Component` s with stream ports (units).
"""
