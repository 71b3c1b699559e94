"""A user data set (``--data file.npz``) is refused with one clear message when it cannot train a
model: non-finite pixels, bad labels, wrong shapes, too few samples (issue 21)."""

import logging
import re

import numpy as np
import pytest

from slimgen.sw.data import load_npz, min_split_samples, stratified_split


def _write(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _good(n=50, features=16):
    rng = np.random.default_rng(0)
    return rng.random((n, features)), np.arange(n) % 3


def _refused(path, message):
    """``load_npz(path)`` raises ValueError with exactly ``Data file {path}: {message}``."""
    with pytest.raises(ValueError) as e:
        load_npz(path)
    assert str(e.value) == f"Data file {path}: {message}"


@pytest.mark.parametrize("bad,shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_non_finite_pixels_are_refused(tmp_path, bad, shown):
    x, y = _good()
    x[3, 5] = bad
    _refused(_write(tmp_path, x=x, y=y),
             f"x holds {shown} at index (3, 5); pixel values must be finite numbers in [0, 1]")


def test_non_finite_pixel_in_an_image_array(tmp_path):
    x, y = _good()
    x = x.reshape(50, 4, 4)
    x[7, 1, 2] = np.nan
    _refused(_write(tmp_path, x=x, y=y),
             "x holds nan at index (7, 1, 2); pixel values must be finite numbers in [0, 1]")


def test_pixels_out_of_range_say_how_to_scale(tmp_path):
    x, y = _good()
    _refused(_write(tmp_path, x=x * 255, y=y),
             f"x must be scaled to [0, 1], found values in [{(x * 255).min()}, "
             f"{(x * 255).max()}] (divide by the largest pixel value, e.g. x / 255)")


def test_non_numeric_pixels(tmp_path):
    _, y = _good(4)
    _refused(_write(tmp_path, x=np.array([["a", "b"]] * 4), y=y),
             "x must hold numbers, not values of type <U1")


@pytest.mark.parametrize("label,message", [
    (-1, "y holds -1 at index 4; labels must be non-negative whole numbers (0, 1, 2, …)"),
    (1.5, "y holds 1.5 at index 4; labels must be non-negative whole numbers (0, 1, 2, …)"),
    (-1.0, "y holds -1.0 at index 4; labels must be non-negative whole numbers (0, 1, 2, …)"),
    (np.nan, "y holds nan at index 4; labels must be non-negative whole numbers (0, 1, 2, …)"),
    (np.inf, "y holds inf at index 4; labels must be non-negative whole numbers (0, 1, 2, …)"),
])
def test_bad_labels(tmp_path, label, message):
    x, y = _good()
    y = y.astype(type(label))     # -1 in an integer array, the others in a float array
    y[4] = label
    _refused(_write(tmp_path, x=x, y=y), message)


def test_whole_float_labels_are_labels(tmp_path):
    x, y = _good()
    d = load_npz(_write(tmp_path, x=x, y=y.astype(np.float32)))
    assert d.y.dtype == np.int64 and d.n_classes == 3
    np.testing.assert_array_equal(d.y, y)


def test_non_numeric_labels(tmp_path):
    x, _ = _good(4)
    _refused(_write(tmp_path, x=x, y=np.array(["a", "b", "a", "b"])),
             "y must hold integer class labels, not values of type <U1")


def test_empty_data_set(tmp_path):
    _refused(_write(tmp_path, x=np.zeros((0, 16)), y=np.zeros(0, dtype=int)),
             "it holds no samples (x has shape (0, 16)); the split needs at least 3")


def test_lengths_differ(tmp_path):
    x, y = _good()
    _refused(_write(tmp_path, x=x, y=y[:-1]),
             "x has 50 samples but y has 49 labels; give one label per sample")


@pytest.mark.parametrize("x_shape,y_shape,message", [
    ((50,), (50,), "x must have shape (n, features) or (n, height, width), not (50,)"),
    ((50, 2, 2, 4), (50,),
     "x must have shape (n, features) or (n, height, width), not (50, 2, 2, 4)"),
    ((50, 0), (50,), "x must have shape (n, features) or (n, height, width), not (50, 0)"),
    ((50, 16), (50, 1), "y must have shape (n,), one label per sample, not (50, 1)"),
    ((50, 16), (), "y must have shape (n,), one label per sample, not ()"),
])
def test_wrong_dimensionality(tmp_path, x_shape, y_shape, message):
    _refused(_write(tmp_path, x=np.zeros(x_shape), y=np.zeros(y_shape, dtype=int)), message)


def test_too_few_samples_for_the_split(tmp_path):
    x, y = _good(2)
    _refused(_write(tmp_path, x=x, y=y),
             "it holds 2 samples, too few for the train/validation/test split (test fraction "
             "0.2, validation fraction 0.1): it needs at least 3")
    load_npz(_write(tmp_path, "three.npz", x=_good(3)[0], y=np.array([0, 1, 0])))


def test_min_split_samples():
    assert min_split_samples(0.2, 0.1) == 3
    assert min_split_samples(0.2, 0.0) == 2
    assert min_split_samples(0.5, 0.5) == 4
    for test_fraction, val_fraction in ((0.2, 0.1), (0.2, 0.0), (0.5, 0.5), (0.9, 0.3)):
        n = min_split_samples(test_fraction, val_fraction)
        for m, ok in ((n - 1, False), (n, True)):
            if m < 1:
                continue
            parts = None
            try:
                parts = stratified_split(np.zeros(m), seed=0, test_fraction=test_fraction,
                                         val_fraction=val_fraction)
            except ValueError:
                pass
            assert (parts is not None) == ok
            if parts is not None:
                assert len(parts.train) and len(parts.test)
                assert len(parts.val) or val_fraction == 0


def test_split_refuses_too_few_samples():
    with pytest.raises(ValueError, match=r"^2 samples are too few for the train/validation/test "
                                         r"split \(test fraction 0.2, validation fraction 0.1\): "
                                         r"it needs at least 3$"):
        stratified_split(np.zeros(2), seed=0)


def test_one_class_warns(tmp_path, caplog):
    x, _ = _good()
    path = _write(tmp_path, x=x, y=np.full(50, 2))
    with caplog.at_level(logging.WARNING, logger="slimgen.sw.data"):
        d = load_npz(path)
    assert d.n_classes == 3
    assert [r.getMessage() for r in caplog.records] == [
        f"Data file {path}: y holds one class only (2); a classifier trained on it learns "
        f"nothing"]


def test_two_classes_do_not_warn(tmp_path, caplog):
    x, _ = _good()
    with caplog.at_level(logging.WARNING, logger="slimgen.sw.data"):
        load_npz(_write(tmp_path, x=x, y=np.arange(50) % 2))
    assert caplog.records == []


def test_an_npy_file_named_npz(tmp_path):
    path = tmp_path / "x.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros((4, 4)))
    with pytest.raises(ValueError, match=rf"^Data file {re.escape(str(path))} is a single .npy "
                                         rf"array, not an .npz holding arrays 'x' and 'y'$"):
        load_npz(path)


LABEL_RANGE = "labels must be class numbers 0 to 65535 (slimgen takes at most 65536 classes)"


@pytest.mark.parametrize("dtype,label,message", [
    (np.uint64, 2**63, f"y holds 9223372036854775808 at index 4; {LABEL_RANGE}"),
    (np.uint64, 2**64 - 1, f"y holds 18446744073709551615 at index 4; {LABEL_RANGE}"),
    (np.int64, 2**63 - 1, f"y holds 9223372036854775807 at index 4; {LABEL_RANGE}"),
    (np.int32, 65536, f"y holds 65536 at index 4; {LABEL_RANGE}"),
    (np.float64, 1e300, f"y holds 1e+300 at index 4; {LABEL_RANGE}"),
    (np.float64, 2.0**63, f"y holds 9.223372036854776e+18 at index 4; {LABEL_RANGE}"),
    (np.float32, 2.0**40, f"y holds 1099511627776.0 at index 4; {LABEL_RANGE}"),
])
def test_labels_too_large_for_a_class_are_refused_before_any_cast(tmp_path, recwarn, dtype,
                                                                   label, message):
    """Checked in their own dtype: a cast to int64 would wrap 2**64 - 1 to -1 and turn 1e300
    into -2**63 (with a RuntimeWarning)."""
    x, y = _good()
    y = y.astype(dtype)
    y[4] = label
    _refused(_write(tmp_path, x=x, y=y), message)
    assert [str(w.message) for w in recwarn] == []


def test_the_largest_label_is_taken(tmp_path):
    x, y = _good()
    y = y.astype(np.uint64)
    y[4] = 65535
    assert load_npz(_write(tmp_path, x=x, y=y)).n_classes == 65536


def test_a_text_file_named_npz(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello\n")
    with pytest.raises(ValueError) as e:
        load_npz(path)
    assert str(e.value) == (f"Data file {path} is not an .npz (NumPy zip) file of arrays x and "
                            f"y; make one with numpy.savez('{path.name}', x=x, y=y)")
    assert "pickle" not in str(e.value)


@pytest.mark.parametrize("arrays,message", [
    ({"x": np.zeros((5, 4)), "z": np.zeros(5)},
     "has no array 'y' (it holds: x, z); an .npz needs x (samples) and y (labels)"),
    ({"y": np.zeros(5)},
     "has no array 'x' (it holds: y); an .npz needs x (samples) and y (labels)"),
    ({"a": np.zeros(5)},
     "has no arrays 'x' and 'y' (it holds: a); an .npz needs x (samples) and y (labels)"),
    ({}, "has no arrays 'x' and 'y' (it holds no arrays); an .npz needs x (samples) and y "
         "(labels)"),
])
def test_missing_arrays_are_named(tmp_path, arrays, message):
    path = _write(tmp_path, **arrays)
    with pytest.raises(ValueError) as e:
        load_npz(path)
    assert str(e.value) == f"Data file {path} {message}"


def test_object_arrays_are_not_unpickled(tmp_path):
    x, _ = _good()
    path = _write(tmp_path, x=x, y=np.array([0, "a"] * 25, dtype=object))
    with pytest.raises(ValueError) as e:
        load_npz(path)
    assert str(e.value) == (f"Data file {path}: y holds Python objects, which slimgen does not "
                            f"load (they could run code); save it as an array of numbers")


def test_a_missing_relative_path_names_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        load_npz("nope/d.npz")
    assert str(e.value) == (f"Data file nope/d.npz does not exist (a relative path is taken from "
                            f"the current directory: {tmp_path / 'nope' / 'd.npz'})")
    with pytest.raises(FileNotFoundError) as e:
        load_npz(tmp_path / "d.npz")
    assert str(e.value) == f"Data file {tmp_path / 'd.npz'} does not exist"


def test_a_folder_named_npz(tmp_path):
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(ValueError) as e:
        load_npz(tmp_path / "d.npz")
    assert str(e.value) == f"Data file {tmp_path / 'd.npz'} is a folder, not an .npz file"


def test_one_class_warns_once_per_file(tmp_path, caplog):
    """The flow loads its data set more than once: the warning comes once, on the first load."""
    x, _ = _good()
    path = _write(tmp_path, x=x, y=np.full(50, 1))
    other = _write(tmp_path, "other.npz", x=x, y=np.full(50, 0))
    with caplog.at_level(logging.WARNING, logger="slimgen.sw.data"):
        load_npz(path)
        load_npz(path, view="image")
        load_npz(other)
        load_npz(str(path))
    assert [r.getMessage() for r in caplog.records] == [
        f"Data file {path}: y holds one class only (1); a classifier trained on it learns "
        f"nothing",
        f"Data file {other}: y holds one class only (0); a classifier trained on it learns "
        f"nothing"]
