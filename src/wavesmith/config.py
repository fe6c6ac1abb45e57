"""Typed configuration: dataclasses, overridden by TOML files and ``--set key=value``.

Every configurable part of wavesmith (each model, the training engine) is a dataclass
whose fields carry defaults. Overrides are checked against the fields: an unknown key is
an error that lists the valid ones, and a value of the wrong type is an error that names
the field and the type. Nothing is executed (TOML is parsed, never ``exec``-ed).

Sections: a run has several configs (``model``, ``train``). A TOML file holds them as
tables (``[model]``, ``[train]``); ``--set`` takes ``section.key=value`` or a bare
``key=value`` when exactly one section has that key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from wavesmith.errors import WavesmithError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is a :class:`WavesmithError`."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise WavesmithError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise WavesmithError(f"config file {path} is not valid TOML: {e}") from None


def coerce(value: Any, tp: Any, name: str) -> Any:
    """Convert ``value`` (a TOML value or a ``--set`` string) to the field type ``tp``."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in get_args(tp):
                return None
        errors = []
        for a in args:
            try:
                return coerce(value, a, name)
            except WavesmithError as e:
                errors.append(str(e))
        raise WavesmithError(errors[0] if errors else f"{name}: cannot use {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        for c in choices:
            if value == c or (isinstance(value, str) and str(c) == value):
                return c
        raise WavesmithError(f"{name} must be one of {', '.join(map(str, choices))}, not {value!r}")
    if origin in (tuple, list):
        (inner, *_) = get_args(tp) or (Any,)
        if isinstance(value, str):
            value = [v for v in (p.strip() for p in value.strip("[]()").split(",")) if v]
        if not isinstance(value, (list, tuple)):
            raise WavesmithError(f"{name} must be a list, not {value!r}")
        args = get_args(tp)
        if origin is tuple and args and Ellipsis not in args:  # a fixed length, e.g. tuple[float, float]
            if len(value) != len(args):
                raise WavesmithError(f"{name} must be a list of {len(args)} values, not {list(value)!r}")
            return tuple(coerce(v, a, name) for v, a in zip(value, args, strict=True))
        items = [coerce(v, inner, name) if inner is not Any else v for v in value]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise WavesmithError(f"{name} must be true or false, not {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise WavesmithError(f"{name} must be an integer, not {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                try:
                    f = float(value)
                    if f.is_integer():
                        return int(f)
                except ValueError:
                    pass
        raise WavesmithError(f"{name} must be an integer, not {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        if isinstance(value, str):
            try:
                f = float(value)
                if math.isfinite(f):
                    return f
            except ValueError:
                pass
        raise WavesmithError(f"{name} must be a number, not {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise WavesmithError(f"{name} must be a string, not {value!r}")
    return value


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved type hint of a config dataclass."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def override(config: Any, values: dict[str, Any], section: str = "") -> Any:
    """A copy of dataclass ``config`` with ``values`` applied, each checked and converted."""
    types_ = field_types(type(config))
    prefix = f"{section}." if section else ""
    changes = {}
    for key, value in values.items():
        if key not in types_:
            valid = ", ".join(sorted(types_))
            raise WavesmithError(f"unknown config key {prefix}{key!r}; valid keys: {valid}")
        changes[key] = coerce(value, types_[key], prefix + key)
    new = dataclasses.replace(config, **changes)
    check = getattr(new, "validate", None)
    if callable(check):
        check()
    return new


def parse_sets(sets: list[str], sections: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Split ``["model.layers=30", "lr=1e-4"]`` into per-section dicts of strings."""
    out: dict[str, dict[str, str]] = {name: {} for name in sections}
    for item in sets:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise WavesmithError(f"--set takes key=value, not {item!r}")
        section, dot, bare = key.partition(".")
        if dot and section in sections:
            out[section][bare] = value.strip()
            continue
        owners = [name for name, cfg in sections.items() if key in field_types(type(cfg))]
        if len(owners) == 1:
            out[owners[0]][key] = value.strip()
        elif not owners:
            valid = "; ".join(f"{n}: {', '.join(sorted(field_types(type(c))))}" for n, c in sections.items())
            raise WavesmithError(f"unknown config key {key!r}; valid keys are {valid}")
        else:
            raise WavesmithError(f"config key {key!r} is ambiguous: write {' or '.join(o + '.' + key for o in owners)}")
    return out


def resolve(sections: dict[str, Any], toml: dict[str, Any] | None = None, sets: list[str] = ()) -> dict[str, Any]:
    """Apply a parsed TOML document, then ``--set`` items, to each section's dataclass."""
    toml = dict(toml or {})
    resolved = dict(sections)
    flat = {k: v for k, v in toml.items() if not isinstance(v, dict)}
    for name, table in toml.items():
        if isinstance(table, dict):
            if name not in sections:
                raise WavesmithError(f"unknown config table [{name}]; valid tables: {', '.join(sections)}")
            resolved[name] = override(resolved[name], table, name)
    if flat:
        as_sets = [f"{k}={_toml_scalar_text(v)}" for k, v in flat.items()]
        for name, values in parse_sets(as_sets, resolved).items():
            if values:
                resolved[name] = override(resolved[name], {k: flat[k] for k in values}, name)
    for name, values in parse_sets(list(sets), resolved).items():
        if values:
            resolved[name] = override(resolved[name], values, name)
    return resolved


def _toml_scalar_text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v).lower() if isinstance(v, bool) else str(v)


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain JSON/TOML-able values (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from :func:`to_dict` output, checking every key.

    A key that ``values`` lacks takes its value from the class's ``ABSENT`` mapping when it is
    there (how configs saved before the key existed behaved), else the field's default: a new
    default then changes new runs without changing what an older checkpoint makes.
    """
    absent = {k: v for k, v in getattr(cls, "ABSENT", {}).items() if k not in values}
    return override(cls(), {**absent, **values})


def dumps_toml(tables: dict[str, dict[str, Any]]) -> str:
    """Write ``{table: {key: scalar-or-list}}`` as TOML (what saved run configs need)."""
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} = (unset)")
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")
