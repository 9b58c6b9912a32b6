"""Safe loading of weight files into omuda models, with a report of what landed.

Understood layouts:
- SegFormer ImageNet `mit_bN.pth` (`patch_embed1.proj.weight`, ..., `head.*` dropped);
- Hugging Face `nvidia/mit-bN` / SegFormer checkpoints (`segformer.encoder.block.0.0.
  attention.self.query.weight`, ...; separate key/value matrices joined into `kv`);
- the lukemelas EfficientNet layout (`_blocks.3._expand_conv.weight`, ...);
- mmseg / DAFormer / MIC checkpoints (`backbone.*`, `decode_head.*`, in UDA checkpoints
  behind `model.`, with `ema_model.` / `imnet_model.` copies that are skipped);
- omuda's own state dicts (`backbone.*`, `decode_head.*`).
Files are read with `weights_only=True` (or safetensors): no arbitrary object is unpickled.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from omuda.errors import OmudaError
from omuda.models.efficientnet_lite import EfficientNetLite0, convert_lukemelas_state_dict
from omuda.models.mit import MixTransformer

logger = logging.getLogger(__name__)

UDA_STUDENT_PREFIX = "model."
BACKBONE_PREFIXES = ("model.backbone.", "backbone.")


@dataclass
class LoadReport:
    """Outcome of loading a state dict into a module.

    missing: parameters/buffers of the module the file did not provide;
    unexpected: file entries that look like they belong to the module but match no name;
    loaded: number of tensors copied; dropped: entries deliberately skipped (ImageNet
    classifier, EMA/ImageNet copies of a UDA checkpoint, the other half of a segmentor).
    """

    missing: list[str]
    unexpected: list[str]
    loaded: int
    dropped: list[str] = field(default_factory=list)

    def summary(self, max_names: int = 3) -> str:
        """One line: counts, plus the first few names of each non-empty list."""
        parts = [f"{self.loaded} tensors loaded"]
        for label, names in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("dropped", self.dropped),
        ):
            if names:
                shown = ", ".join(names[:max_names])
                more = f", ... ({len(names) - max_names} more)" if len(names) > max_names else ""
                parts.append(f"{len(names)} {label} ({shown}{more})")
        return "; ".join(parts)


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Read a weight file (.pth/.pt/.bin/.ckpt via torch, .safetensors) into {name: tensor}.

    A `state_dict` or `model` wrapper (mmseg, DAFormer, training checkpoints) is unwrapped.
    Anything else (missing, corrupt, text, a pickle that needs code) raises OmudaError.
    """
    path = Path(path)
    if not path.is_file():
        raise OmudaError(f"Weight file {path} does not exist.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            content = load_file(str(path), device="cpu")
        else:
            content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch/safetensors raise many types for unreadable files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OmudaError(
            f"{path} is not a readable weight file (state dict of tensors): {reason}"
        ) from error
    content = unwrap_state_dict(content)
    if not isinstance(content, dict):
        raise OmudaError(f"{path} holds a {type(content).__name__}, not a state dict of tensors.")
    tensors = {
        key: value
        for key, value in content.items()
        if isinstance(key, str) and isinstance(value, Tensor)
    }
    if not tensors:
        raise OmudaError(f"{path} holds no tensors, so it is not a model weight file.")
    return tensors


def unwrap_state_dict(content: object) -> object:
    """The `state_dict` (mmseg/DAFormer) or `model` (training checkpoint) entry of a
    checkpoint dict, or `content` itself when it has neither."""
    for wrapper in ("state_dict", "model"):
        if isinstance(content, dict) and isinstance(content.get(wrapper), dict):
            return content[wrapper]
    return content


def load_backbone_weights(
    backbone: nn.Module, state: dict[str, Tensor], source: str = "weights"
) -> LoadReport:
    """Copy the backbone part of `state` (any layout listed in the module docstring) into
    `backbone` (MixTransformer or EfficientNetLite0); `source` names the file in messages.

    Shape mismatches and files that share no name with the backbone raise OmudaError.
    A whole checkpoint dict (`state_dict` / `model` wrapper) is unwrapped first.
    """
    state = unwrap_state_dict(state)
    selected, dropped = _select_prefix(state, BACKBONE_PREFIXES)
    if isinstance(backbone, MixTransformer):
        if any(_HF_ENCODER_KEY.match(key) for key in selected):
            selected, hf_dropped = convert_hf_segformer_state_dict(selected)
            dropped += hf_dropped
        classifier = [key for key in selected if key.startswith("head.")]
        dropped += classifier
        selected = {key: value for key, value in selected.items() if key not in classifier}
    elif isinstance(backbone, EfficientNetLite0) and "_conv_stem.weight" in selected:
        selected, head_and_classifier = convert_lukemelas_state_dict(selected)
        dropped += head_and_classifier
    report = _load_matching(backbone, selected, source)
    report.dropped = dropped
    logger.info("backbone weights from %s: %s", source, report.summary())
    return report


def load_segmentor_weights(
    model: nn.Module, state: dict[str, Tensor], source: str = "weights"
) -> LoadReport:
    """Copy a full checkpoint (omuda's plain `backbone.*`/`decode_head.*` keys, or a
    DAFormer/MIC UDA checkpoint's `model.*` student) into `model`, a segmentor with
    `backbone` and `decode_head` children (`omuda.models.segmentor.Segmentor`).

    The `ema_model.` and `imnet_model.` copies of UDA checkpoints are dropped; a whole
    checkpoint dict (`state_dict` / `model` wrapper) is unwrapped first.
    """
    state = unwrap_state_dict(state)
    dropped: list[str] = []
    if any(key.startswith(("model.backbone.", "model.decode_head.")) for key in state):
        student = {}
        for key, value in state.items():
            if key.startswith(UDA_STUDENT_PREFIX):
                student[key.removeprefix(UDA_STUDENT_PREFIX)] = value
            else:
                dropped.append(key)
        state = student
    if any(key.startswith(("decode_head.head.", "decode_head.scale_attention.")) for key in state):
        raise OmudaError(
            f"{source} is an HRDA multi-resolution checkpoint; omuda builds DAFormer's "
            "single-scale head and cannot load it."
        )
    report = _load_matching(model, state, source)
    report.dropped = dropped + report.dropped
    logger.info("segmentor weights from %s: %s", source, report.summary())
    return report


_HF_ENCODER_KEY = re.compile(r"^(?:segformer\.)?encoder\.")
_HF_PATCH_EMBED = re.compile(r"^encoder\.patch_embeddings\.(\d+)\.(proj|layer_norm)\.(\w+)$")
_HF_STAGE_NORM = re.compile(r"^encoder\.layer_norm\.(\d+)\.(\w+)$")
_HF_BLOCK = re.compile(r"^encoder\.block\.(\d+)\.(\d+)\.(.+)\.(\w+)$")
# Hugging Face module path inside a block -> SegFormer's.
_HF_BLOCK_PARTS = {
    "layer_norm_1": "norm1",
    "layer_norm_2": "norm2",
    "attention.self.query": "attn.q",
    "attention.self.sr": "attn.sr",
    "attention.self.layer_norm": "attn.norm",
    "attention.output.dense": "attn.proj",
    "mlp.dense1": "mlp.fc1",
    "mlp.dwconv.dwconv": "mlp.dwconv.dwconv",
    "mlp.dense2": "mlp.fc2",
}


def convert_hf_segformer_state_dict(
    state: dict[str, Tensor],
) -> tuple[dict[str, Tensor], list[str]]:
    """Rename Hugging Face SegFormer encoder keys to SegFormer's MiT names.

    Returns (converted, dropped): `attention.self.key` and `.value` are concatenated (key
    first) into `attn.kv`; entries outside the encoder (classifier, decode head) are dropped.
    A key or value without its partner is kept under its own name, so it is reported.
    """
    converted: dict[str, Tensor] = {}
    dropped: list[str] = []
    key_value_halves: dict[str, dict[str, Tensor]] = {}
    for original, tensor in state.items():
        name = original.removeprefix("segformer.")
        if match := _HF_PATCH_EMBED.match(name):
            stage, part, leaf = match.groups()
            part = "norm" if part == "layer_norm" else part
            converted[f"patch_embed{int(stage) + 1}.{part}.{leaf}"] = tensor
        elif match := _HF_STAGE_NORM.match(name):
            stage, leaf = match.groups()
            converted[f"norm{int(stage) + 1}.{leaf}"] = tensor
        elif match := _HF_BLOCK.match(name):
            stage, index, part, leaf = match.groups()
            prefix = f"block{int(stage) + 1}.{index}"
            if part in ("attention.self.key", "attention.self.value"):
                half = part.rsplit(".", 1)[1]
                key_value_halves.setdefault(f"{prefix}.attn.kv.{leaf}", {})[half] = tensor
            elif part in _HF_BLOCK_PARTS:
                converted[f"{prefix}.{_HF_BLOCK_PARTS[part]}.{leaf}"] = tensor
            else:
                converted[original] = tensor
        elif name.startswith("encoder."):
            converted[original] = tensor
        else:
            dropped.append(original)
    for kv_name, halves in key_value_halves.items():
        if set(halves) == {"key", "value"}:
            converted[kv_name] = torch.cat([halves["key"], halves["value"]], dim=0)
        else:
            for half, tensor in halves.items():
                converted[kv_name.replace(".kv.", f".{half}.")] = tensor
    return converted, dropped


def _select_prefix(
    state: dict[str, Tensor], prefixes: tuple[str, ...]
) -> tuple[dict[str, Tensor], list[str]]:
    """Entries under the first prefix some key carries, with it stripped, and the rest;
    without any such key the whole state is selected."""
    for prefix in prefixes:
        if any(key.startswith(prefix) for key in state):
            selected = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
            return selected, [key for key in state if not key.startswith(prefix)]
    return dict(state), []


def _load_matching(module: nn.Module, state: dict[str, Tensor], source: str) -> LoadReport:
    """Copy every entry of `state` whose name and shape match `module`; see LoadReport."""
    expected = module.state_dict()
    matched = [key for key in state if key in expected]
    if not matched:
        example = next(iter(state), "nothing")
        raise OmudaError(
            f"{source} shares no parameter name with this {type(module).__name__} "
            f"(first entry: {example}); is it for another model family?"
        )
    for key in matched:
        if state[key].shape != expected[key].shape:
            raise OmudaError(
                f"{source}: {key} has shape {tuple(state[key].shape)} in the file but "
                f"{tuple(expected[key].shape)} in the model (another variant or class count?)."
            )
    module.load_state_dict({key: state[key] for key in matched}, strict=False)
    return LoadReport(
        missing=[key for key in expected if key not in state],
        unexpected=[key for key in state if key not in expected],
        loaded=len(matched),
    )
