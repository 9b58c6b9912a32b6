"""Weight files: SegFormer, Hugging Face, lukemelas and DAFormer layouts; bad files refused."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from omuda.errors import OmudaError
from omuda.models import (
    build_backbone,
    build_segmentor,
    efficientnet_lite0,
    load_backbone_weights,
    load_segmentor_weights,
    load_state_dict_file,
    mit_b0,
    mit_b1,
)
from omuda.models.efficientnet_lite import imagenet_weights_path


def _segformer_file_state(with_classifier: bool = True) -> dict[str, torch.Tensor]:
    """A random mit_b0 in SegFormer's ImageNet-file layout (backbone keys + `head.*`)."""
    state = {
        key: torch.randn_like(t.float()).to(t.dtype) for key, t in mit_b0().state_dict().items()
    }
    if with_classifier:
        state["head.weight"] = torch.randn(1000, 256)
        state["head.bias"] = torch.randn(1000)
    return state


def test_segformer_imagenet_file_loads_and_drops_classifier(tmp_path):
    state = _segformer_file_state()
    path = tmp_path / "mit_b0.pth"
    torch.save(state, path)
    backbone = mit_b0()
    report = load_backbone_weights(backbone, load_state_dict_file(path), source=str(path))
    assert report.missing == [] and report.unexpected == []
    assert report.dropped == ["head.weight", "head.bias"]
    assert report.loaded == len(state) - 2
    assert "2 dropped (head.weight, head.bias)" in report.summary()
    for key, tensor in backbone.state_dict().items():
        assert torch.equal(tensor, state[key]), key
    # The same file through the factory used by configs.
    built = build_backbone("mit_b0", pretrained=str(path))
    assert torch.equal(built.block4[1].mlp.fc2.weight, state["block4.1.mlp.fc2.weight"])


def _to_hugging_face_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SegFormer names -> transformers' SegformerForImageClassification names, written from
    the HF naming scheme (block{i}.{j} -> encoder.block.{i-1}.{j}, kv split in key/value)."""
    hf = {}
    for key, tensor in state.items():
        parts = key.split(".")
        head = parts[0]
        if head.startswith("patch_embed"):
            stage = int(head.removeprefix("patch_embed")) - 1
            module = {"proj": "proj", "norm": "layer_norm"}[parts[1]]
            hf[f"segformer.encoder.patch_embeddings.{stage}.{module}.{parts[2]}"] = tensor
        elif head.startswith("norm"):
            stage = int(head.removeprefix("norm")) - 1
            hf[f"segformer.encoder.layer_norm.{stage}.{parts[1]}"] = tensor
        elif head.startswith("block"):
            prefix = f"segformer.encoder.block.{int(head.removeprefix('block')) - 1}.{parts[1]}"
            inner, leaf = ".".join(parts[2:-1]), parts[-1]
            if inner == "attn.kv":
                half = tensor.shape[0] // 2
                hf[f"{prefix}.attention.self.key.{leaf}"] = tensor[:half]
                hf[f"{prefix}.attention.self.value.{leaf}"] = tensor[half:]
                continue
            hf_inner = {
                "norm1": "layer_norm_1",
                "norm2": "layer_norm_2",
                "attn.q": "attention.self.query",
                "attn.sr": "attention.self.sr",
                "attn.norm": "attention.self.layer_norm",
                "attn.proj": "attention.output.dense",
                "mlp.fc1": "mlp.dense1",
                "mlp.dwconv.dwconv": "mlp.dwconv.dwconv",
                "mlp.fc2": "mlp.dense2",
            }[inner]
            hf[f"{prefix}.{hf_inner}.{leaf}"] = tensor
        elif head == "head":
            hf[f"classifier.{parts[1]}"] = tensor
    return hf


@pytest.mark.parametrize("with_prefix", [True, False])
def test_hugging_face_mit_checkpoint_loads_into_segformer_names(tmp_path, with_prefix):
    state = _segformer_file_state()
    hf_state = _to_hugging_face_names(state)
    if not with_prefix:
        hf_state = {key.removeprefix("segformer."): t for key, t in hf_state.items()}
    assert "segformer.encoder.block.0.0.attention.self.query.weight" in _to_hugging_face_names(
        state
    )
    path = tmp_path / "model.safetensors"
    save_file({key: t.contiguous() for key, t in hf_state.items()}, str(path))
    backbone = mit_b0()
    report = load_backbone_weights(backbone, load_state_dict_file(path), source="hf")
    assert report.missing == [] and report.unexpected == []
    assert sorted(report.dropped) == ["classifier.bias", "classifier.weight"]
    for key, tensor in backbone.state_dict().items():
        assert torch.equal(tensor, state[key]), key


def _daformer_uda_checkpoint(model_keys: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """Student entries with the released names and shapes, tensor i filled with the value i
    (broadcast views: no memory per element), plus EMA / ImageNet copies of a wrong shape
    that would raise if they were loaded."""
    state = {}
    for index, (key, shape) in enumerate(model_keys.items()):
        dtype = torch.long if key.endswith("num_batches_tracked") else torch.float32
        state[key] = torch.tensor(index, dtype=dtype).expand(shape)
        for copy_prefix in ("ema_model.", "imnet_model."):
            state[copy_prefix + key.removeprefix("model.")] = torch.zeros(1)
    return state


def test_daformer_uda_checkpoint_loads_every_student_tensor(tmp_path, shared_dir):
    reference_path = shared_dir / "reference" / "daformer_uda_checkpoint_keys.json"
    if not reference_path.is_file():
        pytest.skip("DAFormer checkpoint key list not found")
    model_keys = json.loads(reference_path.read_text())["model_keys"]
    path = tmp_path / "daformer_gta2cs.pth"
    torch.save({"meta": {"iter": 40000}, "state_dict": _daformer_uda_checkpoint(model_keys)}, path)

    model = build_segmentor("mit_b5")
    report = load_segmentor_weights(model, load_state_dict_file(path), source=str(path))
    assert report.missing == [] and report.unexpected == []
    assert report.loaded == len(model_keys)
    assert len(report.dropped) == 2 * len(model_keys)
    ours = model.state_dict()
    for index, key in enumerate(model_keys):
        assert (ours[key.removeprefix("model.")] == index).all(), key

    # The backbone part of the same checkpoint also initialises a bare backbone.
    backbone = model.backbone
    torch.nn.init.zeros_(backbone.norm4.bias)
    report = load_backbone_weights(backbone, load_state_dict_file(path), source=str(path))
    assert report.missing == [] and report.unexpected == []
    assert (backbone.norm4.bias == list(model_keys).index("model.backbone.norm4.bias")).all()


def test_own_segmentor_state_dict_round_trip(tmp_path):
    source = build_segmentor("mit_b0", num_classes=5, decoder_channels=16)
    path = tmp_path / "omuda.pt"
    torch.save({"model": source.state_dict(), "iteration": 7}, path)
    target = build_segmentor("mit_b0", num_classes=5, decoder_channels=16)
    report = load_segmentor_weights(target, load_state_dict_file(path))
    assert report.missing == [] and report.unexpected == [] and report.dropped == []
    for key, tensor in target.state_dict().items():
        assert torch.equal(tensor, source.state_dict()[key]), key
    # A checkpoint dict read by other means is unwrapped too.
    wrapped = {"meta": {"iter": 7}, "state_dict": source.state_dict()}
    assert load_segmentor_weights(target, wrapped).loaded == len(source.state_dict())


def test_lukemelas_efficientnet_file_loads_into_backbone():
    raw = load_state_dict_file(imagenet_weights_path())
    backbone = efficientnet_lite0(pretrained=False)
    report = load_backbone_weights(backbone, raw, source="efficientnet-lite0")
    assert report.missing == [] and report.unexpected == []
    assert {"_conv_head.weight", "_fc.weight", "_bn1.running_var"} <= set(report.dropped)
    assert torch.equal(
        backbone.blocks[9].depthwise.conv.weight, raw["_blocks.9._depthwise_conv.weight"]
    )


def test_shape_mismatch_names_key_and_both_shapes():
    state = mit_b1().state_dict()
    with pytest.raises(
        OmudaError, match=r"patch_embed1\.proj\.weight.*\(64, 3, 7, 7\).*\(32, 3, 7, 7\)"
    ):
        load_backbone_weights(mit_b0(), state, source="mit_b1.pth")


def test_weights_of_another_model_family_are_refused():
    raw = load_state_dict_file(imagenet_weights_path())
    with pytest.raises(OmudaError, match="another model family"):
        load_backbone_weights(mit_b0(), raw, source="efficientnet-lite0.pth")


def test_hrda_checkpoint_is_refused_clearly():
    state = {"model.decode_head.head.conv_seg.weight": torch.zeros(19, 256, 1, 1)}
    with pytest.raises(OmudaError, match="HRDA"):
        load_segmentor_weights(build_segmentor("mit_b0", decoder_channels=16), state)


def test_unreadable_files_raise_one_sentence_errors(tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    corrupt_safetensors = tmp_path / "broken.safetensors"
    corrupt_safetensors.write_bytes(b"\x00\x01garbage")
    for path in (corrupt, text, corrupt_safetensors, tmp_path / "missing.pth"):
        with pytest.raises(OmudaError) as raised:
            load_state_dict_file(path)
        assert "\n" not in str(raised.value)
        assert str(path) in str(raised.value)


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_with_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"weight": _RunsCodeWhenUnpickled(marker)}, protocol=2))
    with pytest.raises(OmudaError, match="not a readable weight file"):
        load_state_dict_file(path)
    assert not marker.exists()


def test_non_state_dict_content_is_refused(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(OmudaError, match="not a state dict"):
        load_state_dict_file(path)
    empty = tmp_path / "meta_only.pth"
    torch.save({"meta": {"epoch": 3}}, empty)
    with pytest.raises(OmudaError, match="holds no tensors"):
        load_state_dict_file(empty)
