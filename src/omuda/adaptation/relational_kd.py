"""OMUDA's FDM: relational knowledge distillation (RKD, Park et al. 2019) on foreground features.

The student's neck features learn the pairwise distances (eqs. 8-9) and triplet angles
(eqs. 10-11) of a frozen ImageNet extractor's features on source thing-class cells. Two
independent choices select the reading of the paper:

- samples (`SAMPLES`), what one row of the relation is:
  `cells`: each row is one foreground (thing-class) stride-32 cell's feature vector, up to
  `max_cells` of them from the whole batch (`foreground_cell_pairs`); the relations are
  between cells, across and within images.
  `images`: eq. 8 read literally, each row is one source image's feature map multiplied by
  its own foreground cell mask (zero elsewhere) and flattened to C*h*w (`masked_image_rows`);
  the relations are between images, so the paper's batch of 3 gives 6 pairs and 6 triplets.
  An image without a foreground cell is not a sample: its row is marked invalid and takes
  part in no pair or triplet.
- reduction (`REDUCTIONS`), how pairs and triplets are combined:
  `sum`: eqs. 8, 9 and 11 as printed, distances divided by their sum over pairs, L_D summed
  over pairs and L_A over triplets; `mean`: RKD's own code, distances divided by their mean,
  L_D and L_A averaged. With P pairs and T triplets, sum-normalised distances are the
  mean-normalised ones divided by P, so the sum L_D is the mean L_D / P while every smooth-L1
  stays quadratic, and the sum L_A is exactly T times the mean L_A.

Pairs are ordered pairs (i, j), i != j, and triplets ordered (i, j, k), pairwise distinct, of
valid rows; the `sum` normaliser therefore counts each distance twice, which is eq. 8's sum
read over ordered pairs. Both terms compare each set's geometry with itself, so the student
and teacher channel counts may differ and a uniform scaling of either set changes nothing.

Sync-free by design: row counts are fixed by shapes (N = min(B*h*w, max_cells) cells, or B
images) and a (N,) bool `valid` marks the real samples; the losses reduce only over valid
pairs and triplets, and fewer than 3 valid rows give an exact, differentiable 0, so no
data-dependent shape or value reaches the host.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from omuda.adaptation._random import uniform

SAMPLES = ("cells", "images")
REDUCTIONS = ("sum", "mean")

_EPS = 1e-12


def _check_grids(feat_student: Tensor, feat_teacher: Tensor, cell_mask: Tensor) -> None:
    if feat_student.shape[-2:] != feat_teacher.shape[-2:] or (
        feat_student.shape[-2:] != cell_mask.shape[-2:]
    ):
        raise ValueError(
            f"grids differ: student {tuple(feat_student.shape[-2:])}, teacher "
            f"{tuple(feat_teacher.shape[-2:])}, mask {tuple(cell_mask.shape[-2:])}"
        )


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def foreground_cell_pairs(
    feat_student: Tensor,
    feat_teacher: Tensor,
    cell_mask: Tensor,
    max_cells: int = 256,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The same cells' feature vectors from both maps.

    feat_student (B,Cs,h,w), feat_teacher (B,Ct,h,w), cell_mask (B,h,w) bool ->
    f_student (N,Cs), f_teacher (N,Ct) (detached), valid (N,) bool, N = min(B*h*w, max_cells).
    When the mask holds more than N cells a uniform random subset of them is taken; otherwise
    all of them, and the remaining rows are non-foreground cells with valid = False.
    """
    _check_grids(feat_student, feat_teacher, cell_mask)
    flat_mask = cell_mask.reshape(-1)
    num_selected = min(flat_mask.numel(), max_cells)
    # Foreground cells score in [1,2), the others in [0,1): top-k picks foreground first,
    # in random order, with no count read back to the host.
    scores = uniform((flat_mask.numel(),), generator, cell_mask.device) + flat_mask.float()
    chosen = scores.topk(num_selected).indices
    f_student = feat_student.permute(0, 2, 3, 1).reshape(-1, feat_student.shape[1])[chosen]
    f_teacher = feat_teacher.detach().permute(0, 2, 3, 1).reshape(-1, feat_teacher.shape[1])
    return f_student, f_teacher[chosen], flat_mask[chosen]


def masked_image_rows(
    feat_student: Tensor, feat_teacher: Tensor, cell_mask: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """One row per image: its feature map times its own foreground cell mask, flattened.

    feat_student (B,Cs,h,w), feat_teacher (B,Ct,h,w), cell_mask (B,h,w) bool ->
    rows_student (B,Cs*h*w), rows_teacher (B,Ct*h*w) (detached), valid (B,) bool.
    Eq. 8's (f^i - f^j) M with each image's own M: cells that are foreground in one image
    only compare its features with zeros. valid marks images with at least one foreground
    cell; the others are zero rows that the losses leave out.
    """
    _check_grids(feat_student, feat_teacher, cell_mask)
    keep = cell_mask.unsqueeze(1)
    rows_student = (feat_student * keep).flatten(1)
    rows_teacher = (feat_teacher.detach() * keep).flatten(1)
    return rows_student, rows_teacher, cell_mask.flatten(1).any(dim=1)


def foreground_rows(
    feat_student: Tensor,
    feat_teacher: Tensor,
    cell_mask: Tensor,
    samples: str = "cells",
    max_cells: int = 256,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The rows FDM relates: foreground cells (`cells`) or masked images (`images`).

    feat_student (B,Cs,h,w), feat_teacher (B,Ct,h,w), cell_mask (B,h,w) bool ->
    f_student (N,Ds), f_teacher (N,Dt) (detached), valid (N,) bool; `cells`: N =
    min(B*h*w, max_cells), D = C (`foreground_cell_pairs`); `images`: N = B, D = C*h*w
    (`masked_image_rows`, which ignores max_cells and generator).
    """
    if samples == "cells":
        return foreground_cell_pairs(feat_student, feat_teacher, cell_mask, max_cells, generator)
    if samples == "images":
        return masked_image_rows(feat_student, feat_teacher, cell_mask)
    raise ValueError(f"samples must be one of {SAMPLES}, got {samples!r}")


def _at_least_float32(features: Tensor) -> Tensor:
    """bf16/fp16 rows are computed in float32; float64 rows stay float64."""
    return features if features.dtype == torch.float64 else features.float()


def _pairwise_geometry(features: Tensor) -> tuple[Tensor, Tensor]:
    """features (N,C) -> distances (N,N), unit difference vectors (N,N,C).

    Row i, column j holds |f_j - f_i| and (f_j - f_i) / |f_j - f_i|. The squared distance is
    clamped at 1e-12 before the root, so coincident vectors give finite values and gradients.
    """
    differences = features.unsqueeze(0) - features.unsqueeze(1)
    distances = differences.pow(2).sum(dim=-1).clamp(min=_EPS).sqrt()
    return distances, differences / distances.unsqueeze(-1)


def _valid_or_all(valid: Tensor | None, num_rows: int, device: torch.device) -> Tensor:
    if valid is None:
        return torch.ones(num_rows, dtype=torch.bool, device=device)
    return valid.to(device=device, dtype=torch.bool)


def _distinct_pairs(valid: Tensor) -> Tensor:
    """(N,N) bool: both rows valid and i != j."""
    eye = torch.eye(valid.numel(), dtype=torch.bool, device=valid.device)
    return valid.view(-1, 1) & valid.view(1, -1) & ~eye


def _distinct_triplets(pairs: Tensor) -> Tensor:
    """(N,N,N) bool from the (N,N) distinct valid pairs: i, j, k valid and pairwise distinct."""
    return pairs.unsqueeze(2) & pairs.unsqueeze(1) & pairs.unsqueeze(0)


def _normalised_distances(distances: Tensor, pairs: Tensor, reduction: str) -> Tensor:
    """Distances on `pairs` divided by their sum (`sum`) or mean (`mean`) there; 0 elsewhere."""
    distances = torch.where(pairs, distances, 0.0)
    normaliser = distances.sum()
    if reduction == "mean":
        normaliser = normaliser / pairs.sum().clamp(min=1)
    return distances / normaliser.clamp(min=_EPS)


def _reduce(per_item: Tensor, selected: Tensor, reduction: str) -> Tensor:
    """Sum or mean of per_item over the `selected` entries; exact 0 when none is selected."""
    total = torch.where(selected, per_item, 0.0).sum()
    return total if reduction == "sum" else total / selected.sum().clamp(min=1)


def _distance_term(
    distances_student: Tensor, distances_teacher: Tensor, pairs: Tensor, reduction: str
) -> Tensor:
    student = _normalised_distances(distances_student, pairs, reduction)
    teacher = _normalised_distances(distances_teacher, pairs, reduction)
    per_pair = F.smooth_l1_loss(student, teacher, reduction="none")
    return _reduce(per_pair, pairs, reduction)


def _angle_term(
    unit_student: Tensor, unit_teacher: Tensor, triplets: Tensor, reduction: str
) -> Tensor:
    # cosines[i, j, k] = <unit[i, j], unit[i, k]>: the angle at i between f_j - f_i and f_k - f_i.
    student = torch.bmm(unit_student, unit_student.transpose(1, 2))
    teacher = torch.bmm(unit_teacher, unit_teacher.transpose(1, 2))
    per_triplet = F.smooth_l1_loss(student, teacher, reduction="none")
    return _reduce(per_triplet, triplets, reduction)


def rkd_distance_loss(
    f_student: Tensor, f_teacher: Tensor, valid: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """RKD distance loss (eqs. 8-9): smooth-L1 between normalised pairwise distances.

    f_student (N,Ds), f_teacher (N,Dt) (detached here), valid (N,) bool or None (all valid)
    -> scalar float32 (float64 for float64 rows). Over the P ordered pairs i != j of valid
    rows, each set's distances are divided by their sum (`sum`, eq. 8) or mean (`mean`, RKD);
    the smooth-L1 (beta 1) is summed (`sum`, eq. 9) or averaged (`mean`) over the pairs.
    Fewer than 2 valid rows -> exact 0.
    """
    _check_reduction(reduction)
    pairs = _distinct_pairs(_valid_or_all(valid, f_student.shape[0], f_student.device))
    distances_student, _ = _pairwise_geometry(_at_least_float32(f_student))
    distances_teacher, _ = _pairwise_geometry(_at_least_float32(f_teacher.detach()))
    return _distance_term(distances_student, distances_teacher, pairs, reduction)


def rkd_angle_loss(
    f_student: Tensor, f_teacher: Tensor, valid: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """RKD angle loss (eqs. 10-11): smooth-L1 between triplet angle cosines.

    f_student (N,Ds), f_teacher (N,Dt) (detached here), valid (N,) bool or None -> scalar
    float32 (float64 for float64 rows). For every ordered triplet (i,j,k) of distinct valid
    rows, the cosine of the angle at i between (f_j - f_i) and (f_k - f_i); smooth-L1 (beta 1)
    summed (`sum`, eq. 11) or averaged (`mean`) over those triplets. Memory and time are
    O(N^2 D + N^3). Fewer than 3 valid rows -> exact 0.
    """
    _check_reduction(reduction)
    pairs = _distinct_pairs(_valid_or_all(valid, f_student.shape[0], f_student.device))
    _, unit_student = _pairwise_geometry(_at_least_float32(f_student))
    _, unit_teacher = _pairwise_geometry(_at_least_float32(f_teacher.detach()))
    return _angle_term(unit_student, unit_teacher, _distinct_triplets(pairs), reduction)


def relational_kd_loss(
    f_student: Tensor, f_teacher: Tensor, valid: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """L_KD = L_D + L_A (eq. 12) on rows of either kind, each set's geometry computed once.

    f_student (N,Ds), f_teacher (N,Dt) (detached here), valid (N,) bool or None -> scalar
    float32 (float64 for float64 rows); rows from `foreground_rows`. `reduction` as in
    `rkd_distance_loss` and `rkd_angle_loss`. Fewer than 3 valid rows -> exact 0,
    differentiable.
    """
    _check_reduction(reduction)
    if f_student.shape[0] != f_teacher.shape[0]:
        raise ValueError(f"row counts differ: {f_student.shape[0]} vs {f_teacher.shape[0]}")
    valid = _valid_or_all(valid, f_student.shape[0], f_student.device)
    pairs = _distinct_pairs(valid)
    distances_student, unit_student = _pairwise_geometry(_at_least_float32(f_student))
    distances_teacher, unit_teacher = _pairwise_geometry(_at_least_float32(f_teacher.detach()))
    loss = _distance_term(distances_student, distances_teacher, pairs, reduction) + _angle_term(
        unit_student, unit_teacher, _distinct_triplets(pairs), reduction
    )
    # Two rows have one distance, the same after normalisation in both sets; zero it
    # explicitly so the "fewer than 3 rows" rule holds exactly rather than up to rounding.
    return torch.where(valid.sum() >= 3, loss, 0.0)
