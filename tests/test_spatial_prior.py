"""CAMix's source spatial counts: per-cell class fractions by hand, and their cache."""

from pathlib import Path

import numpy as np

from omuda.data import io
from omuda.data.spatial_prior import label_fractions, load_spatial_counts, prior_file


def test_fractions_per_cell_by_hand():
    # 4x6 label on a 2x3 grid: each cell is 2x2 pixels.
    label = np.array(
        [
            [0, 0, 1, 1, 255, 255],
            [0, 0, 1, 2, 255, 2],
            [5, 5, 5, 5, 5, 5],
            [5, 0, 5, 5, 5, 5],
        ],
        dtype=np.uint8,
    )
    fractions = label_fractions(label, (2, 3))
    assert fractions.shape == (19, 2, 3)
    assert fractions[0].tolist() == [[1.0, 0.0, 0.0], [0.25, 0.0, 0.0]]
    assert fractions[1].tolist() == [[0.0, 0.75, 0.0], [0.0, 0.0, 0.0]]
    assert fractions[2].tolist() == [[0.0, 0.25, 0.25], [0.0, 0.0, 0.0]]
    assert fractions[5].tolist() == [[0.0, 0.0, 0.0], [0.75, 1.0, 1.0]]
    # ignored pixels count for no class: the top-right cell sums to 1/4
    assert fractions.sum(axis=0).tolist() == [[1.0, 1.0, 0.25], [1.0, 1.0, 1.0]]


def test_cells_follow_the_image_frame_whatever_its_size():
    # 3 rows on a 2-row grid: rows 0, 1 -> cell 0 (floor(y*2/3)), row 2 -> cell 1.
    label = np.array([[3], [3], [4]], dtype=np.uint8)
    fractions = label_fractions(label, (2, 1))
    assert fractions[3, :, 0].tolist() == [1.0, 0.0]
    assert fractions[4, :, 0].tolist() == [0.0, 1.0]
    # a grid finer than the label: cells without a pixel stay 0
    assert label_fractions(np.zeros((1, 1), np.uint8), (2, 2))[0].tolist() == [[1, 0], [0, 0]]


def _labels(root: Path, values: list[int]) -> list[Path]:
    paths = []
    for number, value in enumerate(values):
        path = root / "labels" / f"{number}_labelTrainIds.png"
        io.write_label(path, np.full((4, 4), value, dtype=np.uint8))
        paths.append(path)
    return paths


def test_counts_are_cached_beside_the_dataset_for_exactly_its_labels(tmp_path, capsys):
    paths = _labels(tmp_path, [7, 7, 8])
    counts = load_spatial_counts(tmp_path, paths, (2, 2))
    assert counts[7].tolist() == [[2, 2], [2, 2]] and counts[8].tolist() == [[1, 1], [1, 1]]
    assert prior_file(tmp_path, (2, 2)).is_file()
    assert "spatial prior of 3 labels" in capsys.readouterr().err
    # the cache answers now: a changed label file is not read again ...
    io.write_label(paths[2], np.full((4, 4), 9, dtype=np.uint8))
    assert load_spatial_counts(tmp_path, paths, (2, 2))[8].sum() == 4.0
    assert capsys.readouterr().err == ""
    # ... but another set of labels, or another grid, is computed again
    assert load_spatial_counts(tmp_path, paths[1:], (2, 2))[9].sum() == 4.0
    assert load_spatial_counts(tmp_path, paths, (1, 1))[9].tolist() == [[1.0]]
    # a damaged cache file is replaced
    prior_file(tmp_path, (1, 1)).write_bytes(b"not a numpy file")
    assert load_spatial_counts(tmp_path, paths, (1, 1))[7].tolist() == [[2.0]]


def test_worker_processes_give_the_same_counts(tmp_path):
    paths = _labels(tmp_path, [1, 2, 3, 1])
    from omuda.data.spatial_prior import spatial_counts

    in_process = spatial_counts(paths, (2, 2), workers=0)
    assert np.array_equal(spatial_counts(paths, (2, 2), workers=2), in_process)
    assert in_process[1].tolist() == [[2.0, 2.0], [2.0, 2.0]]
