"""The paper's per-class rows, shown beside runs on the real-data configs.

OMUDA: Omni-level Masking for Unsupervised Domain Adaptation in Semantic Segmentation
(arXiv:2512.12303), Table I (GTA5 -> Cityscapes, 19 classes) and Table II (SYNTHIA ->
Cityscapes, 16 classes: terrain, truck and train are not scored), MiT-B5, 40k iterations.
IoUs in percent, in Cityscapes train-id order; None where the table has no column.
"""

from __future__ import annotations

from dataclasses import dataclass

from omuda.data.labels import NUM_CLASSES, SYNTHIA_16_CLASSES


@dataclass(frozen=True)
class PaperRow:
    """One method's row of a per-class table of the paper."""

    table: str  # e.g. "Table I (GTA5 -> Cityscapes)"
    method: str  # the row's name in the table
    iou: tuple[float | None, ...]  # 19 per-class IoUs in percent, None: not scored
    miou: float  # the table's mIoU column (19 classes for GTA5, 16 for SYNTHIA)

    @property
    def label(self) -> str:
        """Column heading: method and table, e.g. "DAFormer+OMUDA (paper, Table I)"."""
        return f"{self.method} (paper, {self.table.split(' (')[0]})"


def _synthia_row(values: tuple[float, ...]) -> tuple[float | None, ...]:
    """Table II's 16 values in its column order (the 16 scored train ids) -> 19 slots."""
    by_class = dict(zip(SYNTHIA_16_CLASSES, values, strict=True))
    return tuple(by_class.get(train_id) for train_id in range(NUM_CLASSES))


_TABLE_I = "Table I (GTA5 -> Cityscapes)"
_TABLE_II = "Table II (SYNTHIA -> Cityscapes)"

PAPER_ROWS: dict[str, tuple[PaperRow, ...]] = {
    "gta": (
        PaperRow(
            _TABLE_I,
            "DAFormer",
            (95.7, 70.2, 89.4, 53.5, 48.1, 49.6, 55.8, 59.4, 89.9, 47.9,
             92.5, 72.2, 44.7, 92.3, 74.5, 78.2, 65.1, 55.9, 61.8),
            68.3,
        ),
        PaperRow(
            _TABLE_I,
            "DAFormer+OMUDA",
            (96.9, 76.6, 90.8, 59.8, 52.3, 54.1, 59.7, 64.9, 90.9, 51.7,
             92.3, 73.1, 49.3, 93.5, 77.7, 82.9, 81.6, 54.6, 64.9),
            72.0,
        ),
    ),
    "synthia": (
        PaperRow(
            _TABLE_II,
            "DAFormer",
            _synthia_row((84.5, 40.7, 88.4, 41.5, 6.5, 50.0, 55.0, 54.6, 86.0,
                          89.8, 73.2, 48.2, 87.2, 53.2, 53.9, 61.7)),
            60.9,
        ),
        PaperRow(
            _TABLE_II,
            "DAFormer+OMUDA",
            _synthia_row((88.5, 51.9, 89.6, 49.8, 7.9, 52.4, 59.2, 58.6, 86.2,
                          92.8, 76.2, 54.0, 88.9, 64.2, 57.9, 61.8)),
            65.0,
        ),
    ),
}  # fmt: skip
