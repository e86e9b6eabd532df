"""The safe YAML reader behind sweep configs: strict (a key given twice is an error) and
bounded (size, encoding, alias expansion), so a broken or hostile file fails in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from priorlab.cluster.errors import ConfigError, clip, shown

# Limits on what a config file may be: a sweep config is a few kilobytes of YAML. They keep a
# hostile or broken file (a YAML "billion laughs": a few hundred bytes of nested aliases that
# expand to gigabytes) from taking the machine down before validation can say what is wrong.
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_NODES = 100_000  # YAML nodes after alias expansion (a large sweep has a few hundred)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML itself keeps the last)."""

    where = ""  # the file, for messages

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error says so
                break
            if first is not None:
                raise ConfigError(f"{self.where}line {line}: duplicate key {shown(key)} (first given on line {first}); "
                                  "give each key once")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def expanded_size(node: yaml.Node, limit: int) -> int:
    """Nodes in the document once every alias is expanded, counting up to `limit` (an alias
    is a shared reference in the node graph, so nested aliases multiply without copying)."""
    count, stack = 0, [node]
    while stack and count <= limit:
        n = stack.pop()
        count += 1
        if isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                stack.extend((k, v))
    return count


def read_yaml(path: Path) -> tuple[Any, str]:
    """A YAML file -> (Python data, its text), refusing what no sweep config is: too large a file, text that
    is not UTF-8, aliases that expand past `MAX_CONFIG_NODES`, a key given twice."""
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {size:,} bytes is too large for a sweep config (at most {MAX_CONFIG_BYTES:,})")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); "
                          "save the config as UTF-8") from None
    loader = StrictLoader(text)
    loader.where = f"{path}: "
    try:
        node = loader.get_single_node()  # the node graph: aliases are references, not copies yet
        if node is None:
            return None, text
        n = expanded_size(node, MAX_CONFIG_NODES)
        if n > MAX_CONFIG_NODES:
            raise ConfigError(f"{path}: YAML aliases expand to more than {MAX_CONFIG_NODES:,} values "
                              "(an alias bomb?); a sweep config needs far fewer")
        return loader.construct_document(node), text
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {clip(' '.join(str(e).split()), 300)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
    finally:
        loader.dispose()


def parse_text(text: str) -> Any:
    """A stored config text as data, or None when it is empty or expands past the limit (no path, no
    size check: the text was read by `read_yaml` once)."""
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None or expanded_size(node, MAX_CONFIG_NODES) > MAX_CONFIG_NODES:
            return None
        return loader.construct_document(node)
    finally:
        loader.dispose()
