"""ClassMix: half of the candidate classes, pasted with label and weight 1."""

from __future__ import annotations

import torch

from omuda.adaptation.classmix import (
    candidate_classes,
    class_mask,
    classes_table,
    classmix,
    mix,
    sample_mix_classes,
)


def _toy_label() -> torch.Tensor:
    # Classes 0, 3, 7 and ignore.
    row = torch.tensor([0, 0, 3, 3, 7, 7, 255, 255])
    return row.repeat(4, 1).unsqueeze(0)


def _chosen_values(chosen: torch.Tensor) -> list[set[int]]:
    return [set(torch.nonzero(row).flatten().tolist()) for row in chosen]


def test_batch_candidates_are_the_batch_label_set_with_ignore():
    y_src = torch.stack([torch.tensor([[1, 2], [255, 255]]), torch.tensor([[5, 5], [2, 2]])])
    batch = _chosen_values(candidate_classes(y_src, "batch"))
    assert batch == [{1, 2, 5, 255}, {1, 2, 5, 255}]
    assert _chosen_values(candidate_classes(y_src, "image")) == [{1, 2}, {2, 5}]


def test_batch_scope_draws_half_of_the_batch_set_per_image():
    y_src = torch.stack([torch.tensor([[1, 2], [255, 255]]), torch.tensor([[5, 5], [2, 2]])])
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(30):
        chosen = sample_mix_classes(y_src, generator, scope="batch")
        for values in _chosen_values(chosen):
            assert len(values) == 2 and values <= {1, 2, 5, 255}  # ceil(4 / 2)
            seen.add(frozenset(values))
        # A chosen class absent from the image pastes nothing; a chosen 255 pastes ignore.
        mask = class_mask(y_src, chosen)
        for image in range(2):
            pasted = set(y_src[image][mask[image, 0] > 0].tolist())
            assert pasted == _chosen_values(chosen)[image] & set(y_src[image].flatten().tolist())
    assert len(seen) == 6  # every pair of the four values shows up


def test_image_scope_three_classes_give_two_pasted_classes():
    y_src = _toy_label()
    generator = torch.Generator().manual_seed(0)
    chosen_sets = set()
    for _ in range(20):
        mask = class_mask(y_src, sample_mix_classes(y_src, generator, scope="image"))
        assert mask.shape == (1, 1, 4, 8) and mask.dtype == torch.float32
        pasted_classes = set(y_src[mask[:, 0] > 0].tolist())
        assert len(pasted_classes) == 2 and 255 not in pasted_classes
        # A class is pasted entirely or not at all.
        for label in (0, 3, 7):
            values = mask[0, 0][y_src[0] == label]
            assert values.min() == values.max()
        chosen_sets.add(frozenset(pasted_classes))
    assert len(chosen_sets) == 3  # every pair of the three classes shows up


def test_image_scope_class_count_rounding():
    y_src = torch.stack(
        [
            torch.tensor([[1, 2], [3, 4]]),  # 4 classes -> 2
            torch.tensor([[5, 5], [255, 255]]),  # 1 class -> 1
            torch.full((2, 2), 255),  # no class -> nothing
        ]
    )
    chosen = sample_mix_classes(y_src, torch.Generator().manual_seed(1), scope="image")
    mask = class_mask(y_src, chosen)
    assert mask[0].sum() == 2
    assert torch.equal(mask[1, 0], torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    assert mask[2].sum() == 0


def test_same_generator_state_same_choice():
    y_src = torch.randint(0, 19, (2, 16, 16))
    first = sample_mix_classes(y_src, torch.Generator().manual_seed(5))
    second = sample_mix_classes(y_src, torch.Generator().manual_seed(5))
    assert torch.equal(first, second)


def test_classes_table_and_mask_by_hand():
    table = classes_table([[0, 255], [3]])
    assert table.shape == (2, 256) and table.sum().item() == 3
    y_src = torch.tensor([[[0, 3], [255, 7]], [[0, 3], [255, 7]]])
    expected = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]], [[[0.0, 1.0], [0.0, 0.0]]]])
    assert torch.equal(class_mask(y_src, table), expected)


def test_mix_images_labels_weights():
    mask = torch.tensor([[[[1.0, 0.0]]]])
    assert torch.equal(
        mix(mask, torch.ones(1, 3, 1, 2), torch.zeros(1, 3, 1, 2))[0, :, 0, 0], torch.ones(3)
    )
    mixed_labels = mix(mask, torch.tensor([[[4, 4]]]), torch.tensor([[[9, 9]]]))
    assert mixed_labels.dtype == torch.long and mixed_labels.tolist() == [[[4, 9]]]


def test_classmix_pasted_pixels_carry_source_label_and_weight_one():
    y_src = _toy_label()
    x_src = torch.full((1, 3, 4, 8), 2.0)
    x_tgt = torch.full((1, 3, 4, 8), -2.0)
    y_pseudo = torch.full((1, 4, 8), 11)
    w_pseudo = torch.full((1, 4, 8), 0.25)
    chosen = classes_table([[0, 7, 255]])
    x_mix, y_mix, w_mix, mix_mask = classmix(x_src, y_src, x_tgt, y_pseudo, w_pseudo, chosen)
    pasted = mix_mask[:, 0] > 0
    assert pasted.sum() == 24  # classes 0 and 7 and the ignored pixels, 8 pixels each
    assert torch.equal(y_mix[pasted], y_src[pasted])
    assert torch.equal(y_mix[~pasted], y_pseudo[~pasted])
    assert torch.all(w_mix[pasted] == 1.0) and torch.all(w_mix[~pasted] == 0.25)
    assert torch.all(x_mix.permute(1, 0, 2, 3)[:, pasted] == 2.0)
    assert torch.all(x_mix.permute(1, 0, 2, 3)[:, ~pasted] == -2.0)


def test_no_host_reads():
    # Meta tensors have no data: any .item(), nonzero() or Python branch on values would fail.
    y_src = torch.empty(2, 8, 8, dtype=torch.long, device="meta")
    x = torch.empty(2, 3, 8, 8, device="meta")
    weights = torch.empty(2, 8, 8, device="meta")
    for scope in ("batch", "image"):
        chosen = sample_mix_classes(y_src, scope=scope)
        x_mix, y_mix, w_mix, mix_mask = classmix(x, y_src, x, y_src, weights, chosen)
        assert mix_mask.shape == (2, 1, 8, 8) and y_mix.dtype == torch.long
