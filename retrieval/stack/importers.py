"""Reading a stack from a file: a TOML or YAML list, a CycloneDX SBOM (JSON), or a list of CPE 2.3 names.

The format is recognised from the content. Every problem is reported with where it is (a line, or a
field path such as ``components[12].name``) and the whole file is refused: a stack imported in part
would look complete while missing things, which is worse than no import at all.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from retrieval.stack.model import Component
from retrieval.stack.resolve import cpe_parts

__all__ = ["MAX_STACK_FILE_BYTES", "StackFileError", "parse_stack_file", "parse_stack_text"]

MAX_STACK_FILE_BYTES = 64 * 1024 * 1024
_TOML_SHAPE = re.compile(r"^\s*(?:\[\[?[\w.\"' -]+\]\]?|[\w.\"'-]+\s*=)", re.MULTILINE)
_LIST_KEYS = ("stack", "products", "components", "entries", "items")
#: CycloneDX component types that are not software or hardware a team runs.
_SKIPPED_TYPES = {"data", "file"}


class StackFileError(ValueError):
    """The file cannot be imported; the message names the file and the line or field at fault."""


def parse_stack_file(path: str | Path) -> tuple[str, list[Component]]:
    """(format, components) of a stack file; raises StackFileError."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise StackFileError(f"{path}: no such file")
    if file.stat().st_size > MAX_STACK_FILE_BYTES:
        raise StackFileError(f"{path}: larger than {MAX_STACK_FILE_BYTES // 2**20} MB")
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StackFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return parse_stack_text(text, origin=str(path))


def parse_stack_text(text: str, *, origin: str) -> tuple[str, list[Component]]:
    stripped = text.strip()
    if not stripped:
        raise StackFileError(f"{origin}: the file is empty")
    if stripped[0] == "{" or (stripped[0] == "[" and not re.match(r"\[\[?\s*[\w\"'.-]+\s*\]", stripped)):
        return _json(stripped, origin)
    lines = [line.strip() for line in stripped.splitlines()]
    meaningful = [line for line in lines if line and not line.startswith("#")]
    if meaningful and all(line.lower().startswith("cpe:") for line in meaningful):
        return "cpe-list", _cpe_list(lines, origin)
    if _TOML_SHAPE.search(stripped) and not stripped.lstrip().startswith("-"):
        return "toml", _toml(stripped, origin)
    return "yaml", _yaml(stripped, origin)


# -- JSON: CycloneDX, or a plain list ---------------------------------------------------------------------


def _json(text: str, origin: str) -> tuple[str, list[Component]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StackFileError(f"{origin}: line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg})") from exc
    if isinstance(data, dict) and (data.get("bomFormat") == "CycloneDX" or "specVersion" in data):
        return "cyclonedx", _cyclonedx(data, origin)
    return "json", _items(_list_of(data, origin), origin, lambda i: f"[{i}]" if isinstance(data, list) else None)


def _cyclonedx(data: dict[str, Any], origin: str) -> list[Component]:
    out: list[Component] = []
    metadata = data.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("component"), dict):
        out.append(_cdx_component(metadata["component"], "metadata.component", origin))

    def walk(components: Any, path: str) -> None:
        if components is None:
            return
        if not isinstance(components, list):
            raise StackFileError(f"{origin}: {path} must be a list, not {type(components).__name__}")
        for index, component in enumerate(components):
            where = f"{path}[{index}]"
            if not isinstance(component, dict):
                raise StackFileError(f"{origin}: {where} must be an object, not {type(component).__name__}")
            if component.get("type") not in _SKIPPED_TYPES:
                out.append(_cdx_component(component, where, origin))
            walk(component.get("components"), f"{where}.components")

    walk(data.get("components"), "components")
    if not out:
        raise StackFileError(f"{origin}: the SBOM lists no components")
    return out


def _cdx_component(component: dict[str, Any], where: str, origin: str) -> Component:
    name = component.get("name")
    if not isinstance(name, str) or not name.strip():
        raise StackFileError(f"{origin}: {where}.name is missing or not a string")
    fields = {}
    for key in ("version", "cpe", "purl", "group"):
        value = component.get(key)
        if value is not None and not isinstance(value, str):
            raise StackFileError(f"{origin}: {where}.{key} must be a string, not {type(value).__name__}")
        fields[key] = (value or "").strip()
    if fields["cpe"] and cpe_parts(fields["cpe"]) is None:
        raise StackFileError(f"{origin}: {where}.cpe is not a CPE name: {fields['cpe']!r}")
    supplier = component.get("supplier") if isinstance(component.get("supplier"), dict) else {}
    vendor = component.get("publisher") or (supplier or {}).get("name") or ""
    return Component(
        product=name.strip(),
        vendor=vendor.strip() if isinstance(vendor, str) and not fields["purl"] else "",
        version=fields["version"],
        cpe=fields["cpe"] or None,
        purl=fields["purl"] or None,
        namespace=fields["group"],
        where=where,
    )


# -- TOML, YAML, plain lists ------------------------------------------------------------------------


def _toml(text: str, origin: str) -> list[Component]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StackFileError(f"{origin}: invalid TOML ({exc})") from exc
    key = next((k for k in _LIST_KEYS if k in data), None)
    items = _list_of(data, origin)
    return _items(items, origin, lambda i: f"{key}[{i}]" if key else f"[{i}]")


def _yaml(text: str, origin: str) -> list[Component]:
    try:
        # Every scalar as a string: YAML would read "version: 7.10" as the float 7.1.
        data = yaml.load(text, Loader=yaml.BaseLoader)  # BaseLoader builds no objects
        node = yaml.compose(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise StackFileError(f"{origin}: {where}invalid YAML ({getattr(exc, 'problem', None) or exc})") from exc
    lines = _yaml_item_lines(node)
    items = _list_of(data, origin)
    return _items(items, origin, lambda i: f"line {lines[i]}" if i < len(lines) else f"item {i + 1}")


def _yaml_item_lines(node: Any) -> list[int]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in _LIST_KEYS:
                node = value
                break
    if isinstance(node, yaml.SequenceNode):
        return [item.start_mark.line + 1 for item in node.value]
    return []


def _list_of(data: Any, origin: str) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in _LIST_KEYS:
            if key in data:
                if not isinstance(data[key], list):
                    raise StackFileError(f"{origin}: '{key}' must be a list of products")
                return data[key]
    raise StackFileError(f"{origin}: expected a list of products (or a '{_LIST_KEYS[0]}' list), found no list")


def _items(items: list[Any], origin: str, where_of) -> list[Component]:
    out: list[Component] = []
    for index, item in enumerate(items):
        where = where_of(index) or f"[{index}]"
        if isinstance(item, str):  # "FortiOS 7.2.5" or a CPE name, as one would type it
            if not item.strip():
                raise StackFileError(f"{origin}: {where}: empty entry")
            out.append(
                Component(product=item.strip(), where=where)
                if not item.lower().startswith("cpe:")
                else _cpe(item, where, origin)
            )
            continue
        if not isinstance(item, dict):
            raise StackFileError(
                f"{origin}: {where}: expected a table/mapping with 'product', got {type(item).__name__}"
            )
        values: dict[str, str] = {}
        for key in ("vendor", "product", "name", "version", "cpe", "purl"):
            value = item.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                hint = f' (write it as a string: "{value}")' if isinstance(value, int | float) else ""
                raise StackFileError(
                    f"{origin}: {where}: field '{key}' must be a string, not {type(value).__name__}{hint}"
                )
            values[key] = value.strip()
        product = values.get("product") or values.get("name") or ""
        cpe = values.get("cpe") or None
        if cpe and cpe_parts(cpe) is None:
            raise StackFileError(f"{origin}: {where}: field 'cpe' is not a CPE 2.3 name: {cpe!r}")
        if not product and not cpe and not values.get("purl"):
            raise StackFileError(f"{origin}: {where}: field 'product' is missing")
        out.append(
            Component(
                product=product,
                vendor=values.get("vendor", ""),
                version=values.get("version", ""),
                cpe=cpe,
                purl=values.get("purl") or None,
                where=where,
            )
        )
    if not out:
        raise StackFileError(f"{origin}: the list is empty")
    return out


def _cpe_list(lines: list[str], origin: str) -> list[Component]:
    out = []
    for number, line in enumerate(lines, 1):
        if line and not line.startswith("#"):
            out.append(_cpe(line, f"line {number}", origin))
    return out


def _cpe(text: str, where: str, origin: str) -> Component:
    name = text.strip()
    if not name.lower().startswith("cpe:2.3:") or cpe_parts(name) is None:
        raise StackFileError(f"{origin}: {where}: not a CPE 2.3 name: {name!r}")
    return Component(product="", cpe=name, where=where)
