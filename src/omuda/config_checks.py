"""The checks a config passes as it is built (`omuda.config.config_from_dict`).

Each value is checked as it is set: against its field's type annotation (lists become
tuples, ints floats), the allowed strings (`omuda.config.CHOICES`) and the numeric ranges
(`omuda.config_ranges`); unknown keys are rejected with the valid names. `validate` then
checks what a single field cannot express, across fields of the whole `Config`.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import TYPE_CHECKING, Any, Union

from omuda.config_ranges import check_range
from omuda.errors import OmudaError, shorten

if TYPE_CHECKING:
    from omuda.config import Config


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check `value` against a field annotation; convert lists to tuples and ints to floats."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except OmudaError as error:
                errors.append(str(error))
        raise OmudaError(errors[0] if errors else f"{key}: invalid value {shorten(value)}")
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise OmudaError(f"{key} must be a list, got {shorten(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise OmudaError(f"{key} must have {len(args)} entries, got {shorten(value)}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args, strict=True))
    if annotation is bool:
        if not isinstance(value, bool):
            raise OmudaError(f"{key} must be true or false, got {shorten(value)}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise OmudaError(f"{key} must be an integer, got {shorten(value)}")
        return value
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OmudaError(f"{key} must be a number, got {shorten(value)}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise OmudaError(f"{key} must be a string, got {shorten(value)}")
        return value
    raise OmudaError(f"{key}: unsupported config type {annotation!r}")


def apply_updates(
    obj: Any, updates: dict[str, Any], choices: dict[str, tuple[str, ...]], prefix: str = ""
) -> None:
    """Recursively write a nested dict into dataclass `obj`, rejecting unknown keys, values
    of the wrong type, strings outside `choices[dotted key]` and numbers out of range."""
    types_by_name = _field_types(type(obj))
    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if key not in types_by_name:
            valid = ", ".join(f"{prefix}{name}" for name in types_by_name)
            close = difflib.get_close_matches(str(key), list(types_by_name), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise OmudaError(f"unknown config key {shorten(dotted)}{hint}; valid keys: {valid}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise OmudaError(f"{dotted} must be a mapping of its fields, got {shorten(value)}")
            apply_updates(current, value, choices, f"{dotted}.")
            continue
        value = _coerce(value, types_by_name[key], dotted)
        allowed = choices.get(dotted)
        if allowed is not None and value not in allowed:
            raise OmudaError(f"{dotted} must be one of {', '.join(allowed)}; got {shorten(value)}")
        check_range(dotted, value)
        setattr(obj, key, value)


def validate(config: Config) -> None:
    """Cross-field checks that a single field's type cannot express."""
    train, data, adaptation = config.train, config.data, config.adaptation
    if train.iters < 1:
        raise OmudaError("train.iters must be at least 1")
    for name in ("checkpoint_interval", "eval_interval", "log_interval"):
        if getattr(train, name) < 0:
            raise OmudaError(f"train.{name} must be >= 0 (0 disables it)")
    if data.batch_size < 1:
        raise OmudaError("data.batch_size must be at least 1")
    if min(data.crop_size) < 32:
        raise OmudaError("data.crop_size must be at least 32x32")
    for name in ("source", "target") if adaptation.self_training else ("source",):
        scale = getattr(data, name).scale
        if max(data.crop_size) > max(scale):
            raise OmudaError(
                f"data.crop_size {list(data.crop_size)} is larger than any image resized to"
                f" data.{name}.scale {list(scale)}: each side must be at most {max(scale)}"
            )
    if not 0.0 <= adaptation.mask_ratio < 1.0:
        raise OmudaError("adaptation.mask_ratio must be in [0, 1)")
    if not 1 <= adaptation.distill_stage <= 4:
        raise OmudaError("adaptation.distill_stage must be a backbone stage, 1 to 4")
    if not 0.0 <= adaptation.cdm_class_balance <= 1.0:
        raise OmudaError("adaptation.cdm_class_balance must be in [0, 1]")
    if not 0.0 < adaptation.ema_alpha < 1.0:
        raise OmudaError("adaptation.ema_alpha must be in (0, 1)")
    if config.model.num_classes != 19:
        raise OmudaError("model.num_classes must be 19: the label space is Cityscapes' 19 classes")
    evaluation = config.eval
    if min(evaluation.crop_size) < 1 or min(evaluation.stride) < 1:
        raise OmudaError("eval.crop_size and eval.stride must be positive")
    if any(s > c for s, c in zip(evaluation.stride, evaluation.crop_size, strict=True)):
        raise OmudaError("eval.stride must not exceed eval.crop_size (pixels would be skipped)")
    if evaluation.pseudo_label_images < 0:
        raise OmudaError("eval.pseudo_label_images must be >= 0 (0 scores every image)")
    bad = [c for c in data.thing_classes if not 0 <= c < config.model.num_classes]
    if bad:
        raise OmudaError(f"data.thing_classes holds ids outside 0..18: {bad}")
    ignored_rows = adaptation.pseudo_ignore_top + adaptation.pseudo_ignore_bottom
    if adaptation.self_training and ignored_rows >= data.crop_size[0]:
        raise OmudaError(
            "adaptation.pseudo_ignore_top + pseudo_ignore_bottom cover the whole crop height"
            f" ({data.crop_size[0]} rows): every pseudo-label would get weight 0"
        )
    needs_teacher = adaptation.masking != "none" or adaptation.class_decoupling != "none"
    if needs_teacher and not adaptation.self_training:
        raise OmudaError(
            "adaptation.masking and adaptation.class_decoupling need the teacher's pseudo-labels:"
            " set adaptation.self_training=true"
        )
    if adaptation.lookahead_steps > 0 and not adaptation.self_training:
        raise OmudaError(
            "adaptation.lookahead_steps > 0 (FST) updates the EMA teacher: set"
            " adaptation.self_training=true"
        )
    camix_significance = adaptation.mix == "camix" and adaptation.camix_significance
    if camix_significance and adaptation.class_decoupling != "none":
        raise OmudaError(
            "adaptation.camix_significance replaces the mixed loss that"
            " adaptation.class_decoupling weights: switch one of them off"
        )
