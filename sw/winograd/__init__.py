"""Winograd / CRT convolution algorithm generator (method 7 of DESIGN.md, US10997272B2).

For F(m, r), ``m`` outputs of an ``r``-tap correlation per tile of ``N = m + r − 1`` inputs:

    y = Aᵀ [(G g) ⊙ (Bᵀ d)]        (1-D, α multiplications)
    Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A   (2-D by nesting, α² multiplications)

built exactly (``fractions.Fraction``) from pairwise co-prime moduli: linear factors ``x − a``
(Toom-Cook), ``x`` and ``x^n ± 1`` (the CRT construction), or mixtures, plus the point at infinity.

Modules, one idea each: :mod:`.polynomials` (exact polynomial arithmetic), :mod:`.moduli` (the
polynomial generator), :mod:`.matrices` (the matrix generators), :mod:`.algorithm` (1-D),
:mod:`.nesting` (2-D), :mod:`.tiling` (whole inputs), :mod:`.integer_form` (integer matrices,
scales, bit growth, op counts), :mod:`.hardware` (the tile arithmetic of the convolution
hardware, exactly), :mod:`.error` (float error), :mod:`.search` (points and CRT sets).
"""

from .algorithm import Winograd1D, clear_cache, format_matrix, winograd_1d
from .error import direct_error, error_report, float_error
from .integer_form import (BitGrowth, IntegerForm, IntegerForm2D, OpCounts, ScaledMatrix,
                           csd_digits, integer_form)
from .moduli import (Modulus, check_moduli, crt_moduli, default_points, multiplications,
                     parse_moduli)
from .nesting import Winograd2D, winograd_2d
from .search import CrtSearch, PointSearch, crt_cost, search_crt, search_points
from .tiling import correlate_direct, correlate_tiled

__all__ = [
    "Winograd1D", "winograd_1d", "Winograd2D", "winograd_2d", "Modulus", "parse_moduli",
    "check_moduli", "crt_moduli", "default_points", "multiplications", "integer_form",
    "IntegerForm", "IntegerForm2D", "ScaledMatrix", "BitGrowth", "OpCounts", "csd_digits",
    "correlate_tiled", "correlate_direct", "float_error", "direct_error",
    "error_report", "search_points", "search_crt", "PointSearch", "CrtSearch", "crt_cost",
    "format_matrix", "clear_cache",
]
