"""The one padding function: layouts and position ids by hand."""

import pytest
import torch

from selfparam.padding import pad_tokens


def test_left_padding_lines_rows_up_at_the_end():
    got = pad_tokens([[5, 6, 7], [8]], pad_id=0, side="left")
    assert got["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert got["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert got["position_ids"].tolist() == [[0, 1, 2], [0, 0, 0]]


def test_right_padding_keeps_positions_in_place():
    got = pad_tokens([[5], [6, 7, 8]], pad_id=9, side="right")
    assert got["input_ids"].tolist() == [[5, 9, 9], [6, 7, 8]]
    assert got["attention_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]
    assert got["position_ids"][1].tolist() == [0, 1, 2] and got["position_ids"][0, 0].item() == 0
    assert got["input_ids"].dtype == torch.long


def test_bad_side_and_empty_batch():
    with pytest.raises(ValueError, match="side"):
        pad_tokens([[1]], 0, side="middle")
    with pytest.raises(ValueError, match="at least one"):
        pad_tokens([], 0)
