"""Inference for the qualitative rows (Figs. 3-4) and the t-SNE (Fig. 5) of `omuda report`:
val frames, each run's predictions and decoder features at fixed pixels, and the embedding.

The only inference the report runs, from each run's `checkpoints/latest.pt`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from omuda.config import Config
from omuda.data.labels import IGNORE_INDEX, NUM_CLASSES
from omuda.data.transforms import normalize
from omuda.engine import builders
from omuda.engine.evaluate import infer_logits
from omuda.errors import OmudaError


class FramesNotFound(OmudaError):
    """The val split cannot be read (moved data, another machine): a note, not a failure."""


@dataclass
class Frames:
    """Val frames at the test scale: names, (h,w,3) uint8 images, (h,w) uint8 labels, and
    the names of the frames chosen with --frames."""

    names: list[str]
    images: list[np.ndarray]
    labels: list[np.ndarray]
    chosen: list[str]


@dataclass
class PixelSample:
    """Fixed val pixels for the t-SNE: frame index, row, column, class of each, (N,) int."""

    frame: np.ndarray
    row: np.ndarray
    column: np.ndarray
    label: np.ndarray


def frame_indices(
    names: Sequence[str], chosen: Sequence[str], scan: int
) -> tuple[list[int], list[int]]:
    """(indices of the frames to run, indices of the chosen ones): `scan` evenly spaced
    frames plus every chosen one (a chosen name matches the first frame whose name equals
    it or starts with it)."""
    count = len(names)
    indices = set(np.linspace(0, count - 1, num=min(scan, count), dtype=np.int64).tolist())
    picked = []
    for wanted in chosen:
        matches = [i for i, name in enumerate(names) if name == wanted or name.startswith(wanted)]
        if not matches:
            example = names[0] if names else "none"
            raise OmudaError(f"--frames: no val frame named {wanted!r} (names look like {example})")
        picked.append(matches[0])
    return sorted(indices | set(picked)), picked


def load_frames(cfg: Config, chosen: Sequence[str], scan: int) -> Frames:
    """The val frames of `cfg` to run: see `frame_indices`. Labels are resized (nearest)
    to the image's test-scale size."""
    try:
        dataset = builders.build_val_dataset(cfg)
    except OmudaError as error:
        raise FramesNotFound(str(error)) from None
    names = [image.stem for image, _ in dataset.pairs]
    indices, picked = frame_indices(names, chosen, scan)
    frames = Frames([], [], [], [names[i] for i in picked])
    for index in indices:
        item = dataset[index]
        image = item["image"].permute(1, 2, 0).numpy()
        label = F.interpolate(item["label"][None, None].float(), size=image.shape[:2])
        frames.names.append(item["name"])
        frames.images.append(np.ascontiguousarray(image))
        frames.labels.append(label[0, 0].to(torch.uint8).numpy())
    return frames


def sample_pixels(labels: Sequence[np.ndarray], per_class: int, seed: int = 0) -> PixelSample:
    """Up to `per_class` labelled pixels of each class, drawn uniformly without replacement
    from all frames; the same draw for every run."""
    rng = np.random.default_rng(seed)
    counts = np.array([[np.count_nonzero(label == k) for k in range(NUM_CLASSES)]
                       for label in labels])  # fmt: skip
    picked: list[tuple[int, int, int, int]] = []
    for class_id in range(NUM_CLASSES):
        total = int(counts[:, class_id].sum())
        if total == 0:
            continue
        draws = np.sort(rng.choice(total, size=min(per_class, total), replace=False))
        starts = np.concatenate([[0], np.cumsum(counts[:, class_id])])
        frame_of = np.searchsorted(starts, draws, side="right") - 1
        for frame in np.unique(frame_of):
            flat = np.flatnonzero(labels[frame] == class_id)[
                draws[frame_of == frame] - starts[frame]
            ]
            rows, columns = np.divmod(flat, labels[frame].shape[1])
            picked += [
                (int(frame), int(r), int(c), class_id) for r, c in zip(rows, columns, strict=True)
            ]
    table = np.array(picked, dtype=np.int64).reshape(-1, 4)
    return PixelSample(table[:, 0], table[:, 1], table[:, 2], table[:, 3])


@torch.no_grad()
def run_model(
    model: torch.nn.Module,
    cfg: Config,
    frames: Frames,
    pixels: PixelSample,
    device: torch.device,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Each frame's prediction ((h,w) uint8 train ids, the run's eval mode) and the decoder's
    fused features (before the classifier, stride 4) at the sampled pixels: (N,C) float32."""
    model.eval().to(device)
    predictions = []
    features = np.zeros((len(pixels.frame), 0), dtype=np.float32)
    for index, image in enumerate(frames.images):
        batch = normalize(torch.from_numpy(image).permute(2, 0, 1)[None].to(device))
        output = model(batch, return_features=True)
        logits = output.logits
        if cfg.eval.mode != "whole":
            logits = infer_logits(model, batch, cfg.eval.mode, cfg.eval.crop_size,
                                  cfg.eval.stride, cfg.model.num_classes)  # fmt: skip
        predictions.append(logits.argmax(dim=1)[0].to(torch.uint8).cpu().numpy())
        fused = output.fused[0].float().cpu().numpy()  # (C,hf,wf)
        if features.shape[1] == 0:
            features = np.zeros((len(pixels.frame), fused.shape[0]), dtype=np.float32)
        here = pixels.frame == index
        height, width = image.shape[:2]
        rows = pixels.row[here] * fused.shape[1] // height
        columns = pixels.column[here] * fused.shape[2] // width
        features[here] = fused[:, rows, columns].T
    return predictions, features


def differing(predictions: Sequence[np.ndarray], label: np.ndarray) -> np.ndarray:
    """(h,w) bool: where the runs' predictions differ; with one run, where it is wrong.
    Unlabelled pixels (255) never count."""
    if len(predictions) == 1:
        mask = predictions[0] != label
    else:
        mask = np.zeros(label.shape, dtype=bool)
        for prediction in predictions[1:]:
            mask |= prediction != predictions[0]
    return mask & (label != IGNORE_INDEX)


def pick_frames(
    predictions: Sequence[Sequence[np.ndarray]],
    labels: Sequence[np.ndarray],
    rows: int,
    fixed: Sequence[int] = (),
) -> list[int]:
    """The `fixed` frame indices, else the `rows` frames whose labelled pixels the runs
    disagree on most (one run: the most wrong pixels), most first, ties by index.
    predictions[r][f] is run r's (h,w) prediction of frame f."""
    if fixed:
        return list(fixed)
    scores = []
    for index, label in enumerate(labels):
        labelled = max(int(np.count_nonzero(label != IGNORE_INDEX)), 1)
        mask = differing([run[index] for run in predictions], label)
        scores.append((-np.count_nonzero(mask) / labelled, index))
    return [index for _, index in sorted(scores)[:rows]]


def tsne_embedding(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N,C) features -> (N,2) t-SNE embedding (scikit-learn; PCA start, fixed seed)."""
    from sklearn.manifold import TSNE

    if len(features) < 5:
        raise OmudaError(f"t-SNE needs at least 5 labelled pixels, got {len(features)}")
    perplexity = float(min(30.0, (len(features) - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(features.astype(np.float64)).astype(np.float32)
