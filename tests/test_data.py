"""The digits data set and the seeded, stratified split."""

import numpy as np
import pytest

from slimgen.sw.data import load_dataset, load_digits, load_npz, stratified_split


def test_digits_split_sizes_and_views():
    d = load_digits(seed=0)
    assert d.x.shape == (1797, 64) and d.n_classes == 10
    assert len(d.split.test) == 360
    assert len(d.split.train) + len(d.split.val) + len(d.split.test) == 1797
    parts = np.concatenate([d.split.train, d.split.val, d.split.test])
    assert len(np.unique(parts)) == 1797  # disjoint and complete
    assert load_digits(view="image").x.shape == (1797, 1, 8, 8)
    assert load_digits(view="sequence").x.shape == (1797, 8, 8)
    # Pixel codes are the raw 0..16 values.
    assert np.array_equal(d.x * d.pixel_max, np.rint(d.x * d.pixel_max))
    assert d.x.max() == 1.0


def test_split_is_stratified_and_seeded():
    d = load_digits(seed=3)
    counts_all = np.bincount(d.y, minlength=10)
    counts_test = np.bincount(d.y[d.split.test], minlength=10)
    assert np.all(np.abs(counts_test - counts_all * 0.2) <= 1)
    again = load_digits(seed=3)
    assert np.array_equal(d.split.test, again.split.test)
    other = load_digits(seed=4)
    assert not np.array_equal(d.split.test, other.split.test)


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match=r"^test_fraction must be in \(0, 1\), not 1.5$"):
        stratified_split(np.zeros(10), seed=0, test_fraction=1.5)


def test_npz_loading_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "good.npz"
    np.savez(good, x=rng.random((50, 16)), y=rng.integers(0, 3, 50))
    d = load_npz(good, view="image")
    assert d.x.shape == (50, 1, 4, 4) and d.n_classes == 3 and d.pixel_max == 255.0
    assert load_dataset(str(good)).x.shape == (50, 16)

    missing = tmp_path / "missing.npz"
    np.savez(missing, x=rng.random((5, 4)))
    with pytest.raises(ValueError, match=r"has no array 'y' \(it holds: x\); an .npz needs x "):
        load_npz(missing)
    scaled = tmp_path / "scaled.npz"
    np.savez(scaled, x=rng.random((5, 4)) * 255, y=np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match=r"x must be scaled to \[0, 1\]"):
        load_npz(scaled)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"is not an .npz \(NumPy zip\) file of arrays x and y"):
        load_npz(garbage)
    with pytest.raises(ValueError, match=r"^Data set must be 'digits', 'mnist1d' or 'mnist5k' "
                                         r"\(all but 'digits' with the data extra\) or a path "
                                         r"to an .npz file, not 'mnist'$"):
        load_dataset("mnist")
