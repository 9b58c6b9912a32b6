"""Config YAML read safely: plain data only, no key twice, bounded size and nesting.

`yaml.SafeLoader` never builds objects or runs code, but anchors let a few lines stand for
millions of values (`a1: &a1 [*a0, *a0, ...]`), and deep nesting exhausts the recursion
of PyYAML's composer. Both are refused here, before Python objects are built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from omuda.errors import OmudaError, shorten
from omuda.limits import MAX_CONFIG_BYTES, MAX_YAML_DEPTH, MAX_YAML_VALUES


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges are expanded by SafeLoader itself
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {shorten(key)} cannot be a mapping key", key_node.start_mark
                ) from None
            if repeated:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {shorten(key)} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_size(root: yaml.Node, source: str) -> None:
    """Count the values `root` stands for with every alias expanded, stopping at the bound
    (a recursive anchor stands for infinitely many)."""
    pending = [(root, 1)]
    count = 0
    while pending:
        node, depth = pending.pop()
        count += 1
        if count > MAX_YAML_VALUES:
            raise OmudaError(
                f"{source} stands for more than {MAX_YAML_VALUES} values once its anchors and"
                " aliases are expanded; a config lists only the fields that differ"
            )
        if depth > MAX_YAML_DEPTH:
            raise OmudaError(f"{source} is nested too deeply (more than {MAX_YAML_DEPTH} levels)")
        if isinstance(node, yaml.SequenceNode):
            pending += [(child, depth + 1) for child in node.value]
        elif isinstance(node, yaml.MappingNode):
            pending += [(part, depth + 1) for pair in node.value for part in pair]


def load_yaml(text: str, source: str) -> Any:
    """Plain data from YAML `text` (`source` names it in messages).

    Raises OmudaError when the text is too large or nested too deeply, and yaml.YAMLError
    when it is not valid YAML (a key given twice, a value YAML cannot read included).
    """
    if len(text) > MAX_CONFIG_BYTES:
        raise OmudaError(f"{source} is larger than {MAX_CONFIG_BYTES >> 20} MiB")
    loader = _StrictLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except RecursionError:
            raise OmudaError(f"{source} is nested too deeply") from None
        if root is None:
            return None
        _check_size(root, source)
        return loader.construct_document(root)
    except ValueError as error:  # a 5000-digit number, a date that does not exist
        raise yaml.YAMLError(f"a value YAML cannot read ({shorten(str(error))})") from None
    finally:
        loader.dispose()


def read_yaml_file(path: Path) -> Any:
    """Plain data from a YAML file; every problem is one OmudaError naming the file."""
    if not path.is_file():
        raise OmudaError(f"config file not found: {path}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise OmudaError(
            f"{path} is larger than {MAX_CONFIG_BYTES >> 20} MiB; a config lists only the"
            " fields that differ from the defaults"
        )
    try:
        return load_yaml(path.read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError:
        raise OmudaError(f"{path} is not a UTF-8 text file") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise OmudaError(f"{path} is not valid YAML{where}: {problem[:200]}") from None
