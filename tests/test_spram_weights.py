"""The SPRAM weight store's image and checks (hw/lib/weights.py); the store itself is simulated
in sim/test_network.py (the primitive has no Amaranth simulation model)."""

import pytest

from slimgen.hw.lib.weights import SPRAM_WORDS, SpramWeights, spram_blocks, weight_image


def test_rows_pack_lane_zero_in_the_low_bits_padded_to_halfwords():
    # 3 lanes of 5 bits: 15 bits, one SPRAM; row = w0 | w1 << 5 | w2 << 10 (two's complement)
    image = weight_image([[1, -1], [2, 0], [-16, 15]], 5)
    row0 = 1 | 2 << 5 | (-16 & 31) << 10
    row1 = 31 | 0 << 5 | 15 << 10
    assert image == bytes([row0 & 255, row0 >> 8, row1 & 255, row1 >> 8])


def test_a_row_wider_than_sixteen_bits_spans_several_sprams_low_halfword_first():
    assert spram_blocks(5, 8) == 3 and spram_blocks(2, 8) == 1 and spram_blocks(8, 8) == 4
    image = weight_image([[0x12], [0x34], [-1]], 8)
    assert image == bytes([0x12, 0x34, 0xFF, 0x00])


def test_out_of_range_words_and_bad_depths_are_refused():
    with pytest.raises(ValueError, match=r"Weight 8 does not fit 4 signed bits \(-8 … 7\)"):
        weight_image([[8]], 4)
    with pytest.raises(ValueError, match="same number of weight words"):
        weight_image([[1, 2], [3]], 4)
    with pytest.raises(ValueError, match=f"1 to {SPRAM_WORDS:,} weight words, not 16,385"):
        SpramWeights([[0] * (SPRAM_WORDS + 1)], 4)


def test_the_store_exposes_its_image_and_blocks():
    store = SpramWeights([[1, 2, 3]] * 4, 6)
    assert store.blocks == 2 and store.depth == 3 and len(store.image) == 2 * 2 * 3
