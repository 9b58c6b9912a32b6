"""OMUDA's FDM: relational knowledge distillation (RKD, Park et al. 2019) on foreground cells.

The student's neck features learn the pairwise distances (eqs. 8-9) and triplet angles
(eqs. 10-11) of a frozen ImageNet extractor's features on source thing-class cells.

Sync-free by design: the number of selected cells is fixed by shapes, N = min(B*h*w,
max_cells), and a (N,) bool `valid` marks the rows that are real foreground cells; the losses
average only over valid pairs and triplets, so no data-dependent shape reaches the host.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from omuda.adaptation._random import uniform

_EPS = 1e-12


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
    if feat_student.shape[-2:] != feat_teacher.shape[-2:] or (
        feat_student.shape[-2:] != cell_mask.shape[-2:]
    ):
        raise ValueError(
            f"grids differ: student {tuple(feat_student.shape[-2:])}, teacher "
            f"{tuple(feat_teacher.shape[-2:])}, mask {tuple(cell_mask.shape[-2:])}"
        )
    flat_mask = cell_mask.reshape(-1)
    num_selected = min(flat_mask.numel(), max_cells)
    # Foreground cells score in [1,2), the others in [0,1): top-k picks foreground first,
    # in random order, with no count read back to the host.
    scores = uniform((flat_mask.numel(),), generator, cell_mask.device) + flat_mask.float()
    chosen = scores.topk(num_selected).indices
    f_student = feat_student.permute(0, 2, 3, 1).reshape(-1, feat_student.shape[1])[chosen]
    f_teacher = feat_teacher.detach().permute(0, 2, 3, 1).reshape(-1, feat_teacher.shape[1])
    return f_student, f_teacher[chosen], flat_mask[chosen]


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


def _normalised_distances(distances: Tensor, pairs: Tensor) -> Tensor:
    """Distances on `pairs` divided by their mean there; 0 elsewhere."""
    distances = torch.where(pairs, distances, 0.0)
    mean_distance = distances.sum() / pairs.sum().clamp(min=1)
    return distances / mean_distance.clamp(min=_EPS)


def _distance_term(distances_student: Tensor, distances_teacher: Tensor, pairs: Tensor) -> Tensor:
    student = _normalised_distances(distances_student, pairs)
    teacher = _normalised_distances(distances_teacher, pairs)
    per_pair = F.smooth_l1_loss(student, teacher, reduction="none")
    return torch.where(pairs, per_pair, 0.0).sum() / pairs.sum().clamp(min=1)


def _angle_term(unit_student: Tensor, unit_teacher: Tensor, triplets: Tensor) -> Tensor:
    # cosines[i, j, k] = <unit[i, j], unit[i, k]>: the angle at i between f_j - f_i and f_k - f_i.
    student = torch.bmm(unit_student, unit_student.transpose(1, 2))
    teacher = torch.bmm(unit_teacher, unit_teacher.transpose(1, 2))
    per_triplet = F.smooth_l1_loss(student, teacher, reduction="none")
    return torch.where(triplets, per_triplet, 0.0).sum() / triplets.sum().clamp(min=1)


def rkd_distance_loss(f_student: Tensor, f_teacher: Tensor, valid: Tensor | None = None) -> Tensor:
    """RKD distance loss (eqs. 8-9): smooth-L1 between mean-normalised pairwise distances.

    f_student (N,Cs), f_teacher (N,Ct) (detached here), valid (N,) bool or None (all valid)
    -> scalar float32. Each set's distances are divided by their mean over distinct valid
    pairs (RKD's mean; the paper writes a sum); the smooth-L1 (beta 1) is averaged over the
    ordered pairs i != j of valid rows. Fewer than 2 valid rows -> exact 0.
    """
    pairs = _distinct_pairs(_valid_or_all(valid, f_student.shape[0], f_student.device))
    distances_student, _ = _pairwise_geometry(f_student.float())
    distances_teacher, _ = _pairwise_geometry(f_teacher.detach().float())
    return _distance_term(distances_student, distances_teacher, pairs)


def rkd_angle_loss(f_student: Tensor, f_teacher: Tensor, valid: Tensor | None = None) -> Tensor:
    """RKD angle loss (eqs. 10-11): smooth-L1 between triplet angle cosines.

    f_student (N,Cs), f_teacher (N,Ct) (detached here), valid (N,) bool or None -> scalar
    float32. For every ordered triplet (i,j,k) of distinct valid rows, the cosine of the angle
    at i between (f_j - f_i) and (f_k - f_i); smooth-L1 (beta 1) averaged over those
    triplets. Memory and time are O(N^2 C + N^3). Fewer than 3 valid rows -> exact 0.
    """
    pairs = _distinct_pairs(_valid_or_all(valid, f_student.shape[0], f_student.device))
    _, unit_student = _pairwise_geometry(f_student.float())
    _, unit_teacher = _pairwise_geometry(f_teacher.detach().float())
    return _angle_term(unit_student, unit_teacher, _distinct_triplets(pairs))


def relational_kd_loss(f_student: Tensor, f_teacher: Tensor, valid: Tensor | None = None) -> Tensor:
    """L_KD = L_D + L_A (eq. 12) on selected cells, each set's geometry computed once.

    f_student (N,Cs), f_teacher (N,Ct) (detached here), valid (N,) bool or None -> scalar
    float32. Channel counts may differ (only distances and angles within each set are
    compared). Fewer than 3 valid rows -> exact 0, differentiable.
    """
    if f_student.shape[0] != f_teacher.shape[0]:
        raise ValueError(f"row counts differ: {f_student.shape[0]} vs {f_teacher.shape[0]}")
    valid = _valid_or_all(valid, f_student.shape[0], f_student.device)
    pairs = _distinct_pairs(valid)
    distances_student, unit_student = _pairwise_geometry(f_student.float())
    distances_teacher, unit_teacher = _pairwise_geometry(f_teacher.detach().float())
    loss = _distance_term(distances_student, distances_teacher, pairs) + _angle_term(
        unit_student, unit_teacher, _distinct_triplets(pairs)
    )
    # Two cells have one distance, 1 after normalisation in both sets; zero it explicitly so
    # the "fewer than 3 cells" rule holds exactly rather than up to rounding.
    return torch.where(valid.sum() >= 3, loss, 0.0)
