"""Data augmentation for training: random translations of square images by whole pixels.

Every sample is shifted by its own ``(dy, dx)``, each drawn uniformly from
``{−s, …, s}`` (``s = max_shift``), and the pixels shifted in from outside are 0 (the digits'
background):

``x'[i, r, c] = x[i, r − dy_i, c − dx_i]`` if that pixel lies inside the image, else 0.

The three views of the digits are the same 8×8 images underneath, so the shift is view-aware:

- vector ``(n, side·side)``: reshaped to ``(n, side, side)``, shifted, flattened back;
- image ``(n, c, h, w)``: all channels of a sample move together;
- sequence ``(n, T, f)``: steps are rows and features the pixels of a row (``T`` rows of ``f``).

Randomness comes in as an ``np.random.Generator``: same generator state, same bits.
"""

import math

import numpy as np

__all__ = ["random_shift", "shift_images"]


def shift_images(x, dy, dx):
    """Shift each image ``x[i]`` (``(n, ..., h, w)``, the last two axes are rows and columns)
    by ``dy[i]`` rows down and ``dx[i]`` columns right, filling with zeros.

    The loop version: the reference for :func:`random_shift` (which is vectorised).
    """
    out = np.zeros_like(x)
    h, w = x.shape[-2:]
    for i in range(len(x)):
        a, b = int(dy[i]), int(dx[i])
        if abs(a) >= h or abs(b) >= w:
            continue  # shifted out entirely
        src_r, dst_r = slice(max(0, -a), h - max(0, a)), slice(max(0, a), h - max(0, -a))
        src_c, dst_c = slice(max(0, -b), w - max(0, b)), slice(max(0, b), w - max(0, -b))
        out[i, ..., dst_r, dst_c] = x[i, ..., src_r, src_c]
    return out


def _as_images(x):
    """View ``x`` as ``(n, c, h, w)`` images; returns the view and the function back."""
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ValueError(f"Vector samples must hold a square image, not {x.shape[1]} values")
        return x.reshape(len(x), 1, side, side), lambda im: im.reshape(x.shape)
    if x.ndim == 3:
        return x[:, None], lambda im: im[:, 0]
    if x.ndim == 4:
        return x, lambda im: im
    raise ValueError(f"Samples must be vectors, sequences or images (2, 3 or 4 dimensions), "
                     f"got shape {x.shape}")


def random_shift(x, rng, max_shift=1):
    """``x`` with every sample translated by a random whole-pixel ``(dy, dx)`` in
    ``{−max_shift, …, max_shift}²`` (see the module docstring); a new array, same shape.

    Draws ``rng.integers(-max_shift, max_shift + 1, size=(n, 2))`` (dy, dx per sample).
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be a non-negative integer, not {max_shift!r}")
    im, back = _as_images(np.asarray(x))
    n, _, h, w = im.shape
    d = rng.integers(-max_shift, max_shift + 1, size=(n, 2))     # (n, 2): dy, dx
    if max_shift == 0:
        return back(im.copy())
    # Pad by s on every side, then cut each sample's h×w window at offset (s − dy, s − dx).
    s = max_shift
    padded = np.pad(im, ((0, 0), (0, 0), (s, s), (s, s)))      # (n, c, h + 2s, w + 2s)
    rows = (s - d[:, 0])[:, None] + np.arange(h)[None, :]      # (n, h)
    cols = (s - d[:, 1])[:, None] + np.arange(w)[None, :]      # (n, w)
    i = np.arange(n)[:, None, None, None]
    c = np.arange(im.shape[1])[None, :, None, None]
    out = padded[i, c, rows[:, None, :, None], cols[:, None, None, :]]  # (n, c, h, w)
    return back(out)
