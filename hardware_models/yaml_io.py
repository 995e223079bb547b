"""Reading YAML as users write it: a duplicate key is an error (PyYAML lets the last one win silently).

Used for every YAML the user gives (experiments, hardware presets, network presets), so that all of them
refuse the same mistakes with the same one-line messages naming the file and the lines. The text is bounded
(MAX_YAML_BYTES) and so is the document it expands to through aliases (MAX_YAML_NODES): a few hundred bytes
of nested aliases ("billion laughs") would otherwise expand to gigabytes in whatever walks the result.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hardware_models.bounded_read import read_bounded
from hardware_models.errors import UserError

MAX_YAML_BYTES = 16 * 2**20  # experiments and presets are a few kB
MAX_YAML_NODES = 1_000_000  # scalars, sequences and mappings after expanding every alias


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping holding the same key twice."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first.line + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _expanded_nodes(root: yaml.Node) -> int:
    """Nodes of the document once every alias is expanded, counted without expanding (memoised per node)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 1  # a recursive alias counts once: the constructor builds it as a cycle
            if isinstance(node, yaml.SequenceNode):
                sizes[id(node)] = 1 + sum(size(child) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                sizes[id(node)] = 1 + sum(size(k) + size(v) for k, v in node.value)
        return sizes[id(node)]

    return size(root)


def _load_yaml_text(text: str, source: str | Path, column: bool = False) -> object:
    """The YAML document in `text`; a UserError `SOURCE: line N: ...` for bad syntax, a duplicate key or a
    document that aliases expand past MAX_YAML_NODES."""
    loader = _UniqueKeyLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        nodes = _expanded_nodes(root)
        if nodes > MAX_YAML_NODES:
            raise UserError(f"{source}: its aliases expand to {nodes:.3g} values (at most {MAX_YAML_NODES:,}); "
                            "write the repeated parts out or use fewer nested aliases")
        return loader.construct_document(root)
    except RecursionError:
        raise UserError(f"{source}: nested too deeply to be an experiment or preset") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = ""
        if mark is not None:
            where = f" line {mark.line + 1}" + (f", column {mark.column + 1}" if column else "") + ":"
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        if problem.startswith("duplicate key"):
            raise UserError(f"{source}:{where} {problem}; each key may appear once") from None
        raise UserError(f"{source}:{where} not valid YAML: {problem}") from None
    finally:
        loader.dispose()


def read_yaml_file(path: str | Path, what: str = "file", column: bool = False) -> object:
    """The YAML document in file `path`; a UserError naming the file when it cannot be read or parsed."""
    path = Path(path)
    try:
        text = read_bounded(path, MAX_YAML_BYTES, f"a YAML {what} (a few kB)").decode()
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file; expected a YAML {what}") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return _load_yaml_text(text, path, column=column)


def read_yaml(path: str | Path, what: str = "file") -> dict[str, Any]:
    """The YAML mapping in file `path` (a preset, the GPU calibration); a UserError naming the file when it
    cannot be read, is not YAML, holds a key twice or is not a mapping."""
    data = read_yaml_file(path, what)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys to values, got {type(data).__name__}")
    return data
