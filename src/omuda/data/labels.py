"""Label spaces: the 19 Cityscapes train ids and the id tables of GTA5, SYNTHIA and Cityscapes.

This module is the single source of truth for class names, colours and id -> train id
tables. It depends on numpy only.
"""

from __future__ import annotations

import numpy as np

NUM_CLASSES = 19
IGNORE_INDEX = 255

CLASS_NAMES: tuple[str, ...] = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)

# Official Cityscapes colours, indexed by train id.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)

# Cityscapes label id -> train id (cityscapesscripts' label table); absent ids are ignored.
CITYSCAPES_ID_TO_TRAIN_ID: dict[int, int] = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}

# GTA5 labels are stored as Cityscapes label ids, so the table is the same.
GTA5_ID_TO_TRAIN_ID: dict[int, int] = dict(CITYSCAPES_ID_TO_TRAIN_ID)

# SYNTHIA-RAND-CITYSCAPES class id (R channel of the 16-bit label) -> train id.
SYNTHIA_ID_TO_TRAIN_ID: dict[int, int] = {
    3: 0,
    4: 1,
    2: 2,
    21: 3,
    5: 4,
    7: 5,
    15: 6,
    9: 7,
    6: 8,
    16: 9,
    1: 10,
    10: 11,
    17: 12,
    8: 13,
    18: 14,
    19: 15,
    20: 16,
    12: 17,
    11: 18,
}

# Highest valid raw id of each dataset's label files (anything above is a corrupt label).
CITYSCAPES_MAX_ID = 33
SYNTHIA_MAX_ID = 22

TRAIN_ID_TO_CITYSCAPES_ID: dict[int, int] = {
    train_id: label_id for label_id, train_id in CITYSCAPES_ID_TO_TRAIN_ID.items()
}
TRAIN_ID_TO_SYNTHIA_ID: dict[int, int] = {
    train_id: class_id for class_id, train_id in SYNTHIA_ID_TO_TRAIN_ID.items()
}

# Foreground ("things", K_f) and background ("stuff", K_b) as in DAFormer.
THING_CLASSES: tuple[int, ...] = (6, 7, 11, 12, 13, 14, 15, 16, 17, 18)
STUFF_CLASSES: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 8, 9, 10)

# SYNTHIA never shows terrain (9), truck (14) or train (16); the 13-class protocol also
# drops wall (3), fence (4) and pole (5).
SYNTHIA_16_CLASSES: tuple[int, ...] = tuple(c for c in range(NUM_CLASSES) if c not in (9, 14, 16))
SYNTHIA_13_CLASSES: tuple[int, ...] = tuple(c for c in SYNTHIA_16_CLASSES if c not in (3, 4, 5))


def id_lookup_table(mapping: dict[int, int], size: int = 65536) -> np.ndarray:
    """Return a (size,) uint8 table with table[raw_id] = train id and 255 for unmapped ids.

    Indexing the table with a uint8/uint16 label array converts it in one vectorised step.
    """
    table = np.full(size, IGNORE_INDEX, dtype=np.uint8)
    for raw_id, train_id in mapping.items():
        if 0 <= raw_id < size:
            table[raw_id] = train_id
    return table


def to_train_ids(ids: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """Map raw ids (H,W) of any integer dtype to train ids (H,W) uint8; unmapped -> 255.

    Negative ids and ids beyond 65535 are unmapped as well.
    """
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"label ids must be an integer array, got dtype {ids.dtype}")
    table = id_lookup_table(mapping)
    if ids.dtype in (np.uint8, np.uint16):
        return table[ids]
    in_range = (ids >= 0) & (ids < table.size)
    safe_ids = np.where(in_range, ids, 0).astype(np.int64)
    return np.where(in_range, table[safe_ids], IGNORE_INDEX).astype(np.uint8)


def colorize(train_ids: np.ndarray) -> np.ndarray:
    """Map train ids (H,W) to (H,W,3) uint8 RGB palette colours; 255 and unknown ids -> black."""
    colour_table = np.zeros((256, 3), dtype=np.uint8)
    colour_table[:NUM_CLASSES] = np.asarray(PALETTE, dtype=np.uint8)
    train_ids = np.asarray(train_ids)
    in_range = (train_ids >= 0) & (train_ids < 256)
    safe_ids = np.where(in_range, train_ids, IGNORE_INDEX).astype(np.intp)
    return colour_table[safe_ids]
