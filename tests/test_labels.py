"""Label tables, lookup and colouring, checked against hand-written values."""

from __future__ import annotations

import numpy as np
import pytest

from omuda.data import labels


def test_class_names_and_palette_line_up():
    assert labels.NUM_CLASSES == 19
    assert len(labels.CLASS_NAMES) == len(labels.PALETTE) == 19
    assert labels.CLASS_NAMES[0] == "road"
    assert labels.CLASS_NAMES[13] == "car"
    assert labels.CLASS_NAMES[18] == "bicycle"
    assert labels.PALETTE[0] == (128, 64, 128)
    assert labels.PALETTE[10] == (70, 130, 180)
    assert labels.PALETTE[13] == (0, 0, 142)


def test_cityscapes_and_gta_tables_spot_values():
    table = labels.CITYSCAPES_ID_TO_TRAIN_ID
    assert (table[7], table[8], table[11], table[17], table[24], table[26], table[33]) == (
        0, 1, 2, 5, 11, 13, 18,
    )  # fmt: skip
    assert sorted(table.values()) == list(range(19))
    for unmapped in (0, 1, 6, 9, 10, 14, 15, 16, 18, 29, 30):
        assert unmapped not in table
    assert table == labels.GTA5_ID_TO_TRAIN_ID


def test_synthia_table_spot_values():
    table = labels.SYNTHIA_ID_TO_TRAIN_ID
    assert (table[3], table[4], table[2], table[21], table[1], table[8], table[11]) == (
        0, 1, 2, 3, 10, 13, 18,
    )  # fmt: skip
    assert sorted(table.values()) == list(range(19))
    assert 0 not in table and 13 not in table and 22 not in table


def test_inverse_tables_round_trip():
    for forward, inverse in (
        (labels.CITYSCAPES_ID_TO_TRAIN_ID, labels.TRAIN_ID_TO_CITYSCAPES_ID),
        (labels.SYNTHIA_ID_TO_TRAIN_ID, labels.TRAIN_ID_TO_SYNTHIA_ID),
    ):
        assert sorted(inverse) == list(range(19))
        for train_id, raw_id in inverse.items():
            assert forward[raw_id] == train_id
    assert labels.TRAIN_ID_TO_CITYSCAPES_ID[13] == 26
    assert labels.TRAIN_ID_TO_SYNTHIA_ID[10] == 1


def test_class_groups():
    assert sorted(labels.THING_CLASSES + labels.STUFF_CLASSES) == list(range(19))
    assert len(labels.SYNTHIA_16_CLASSES) == 16
    assert len(labels.SYNTHIA_13_CLASSES) == 13
    assert {9, 14, 16}.isdisjoint(labels.SYNTHIA_16_CLASSES)
    assert set(range(19)) - set(labels.SYNTHIA_13_CLASSES) == {3, 4, 5, 9, 14, 16}


def test_id_lookup_table():
    table = labels.id_lookup_table({3: 0, 7: 5}, size=10)
    assert table.dtype == np.uint8
    assert table.tolist() == [255, 255, 255, 0, 255, 255, 255, 5, 255, 255]
    assert labels.id_lookup_table(labels.CITYSCAPES_ID_TO_TRAIN_ID).shape == (65536,)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64])
def test_to_train_ids_any_int_dtype(dtype):
    ids = np.array([[7, 8, 0], [26, 33, 34]], dtype=dtype)
    train_ids = labels.to_train_ids(ids, labels.CITYSCAPES_ID_TO_TRAIN_ID)
    assert train_ids.dtype == np.uint8
    assert train_ids.tolist() == [[0, 1, 255], [13, 18, 255]]


def test_to_train_ids_out_of_table_values_are_ignored():
    ids = np.array([[-1, 70000, 21]], dtype=np.int64)
    train_ids = labels.to_train_ids(ids, labels.SYNTHIA_ID_TO_TRAIN_ID)
    assert train_ids.tolist() == [[255, 255, 3]]


def test_colorize():
    colours = labels.colorize(np.array([[0, 255], [13, 18]], dtype=np.uint8))
    assert colours.dtype == np.uint8 and colours.shape == (2, 2, 3)
    assert colours[0, 0].tolist() == [128, 64, 128]
    assert colours[0, 1].tolist() == [0, 0, 0]
    assert colours[1, 0].tolist() == [0, 0, 142]
    assert colours[1, 1].tolist() == [119, 11, 32]
