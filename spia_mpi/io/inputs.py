"""TOML input files → validated, frozen dataclasses.

A schema is a tree of frozen dataclasses whose fields are declared with
:func:`option` (default, units, documentation, check). :func:`build` turns the
dict read from a TOML file into that tree and rejects, with one clear
:class:`~spia_mpi.errors.InputError` naming the file and the key:

* unknown keys (with the closest valid key suggested),
* missing required keys,
* wrong types (``"0.8"`` where a number is expected, …),
* values failing their check (``gamma_ev = [-0.1]`` → "must be > 0").

:func:`to_dict` gives back the fully resolved input (defaults applied) for the
output file; :func:`reference_markdown` documents a schema (every key, type,
unit, default) so docs and code cannot drift apart.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from spia_mpi.errors import InputError

_MISSING = dataclasses.MISSING


def option(default=_MISSING, *, units: str = "", doc: str = "", check=None, default_factory=_MISSING):
    """Declare a schema field: default (omit for required), units, doc, check.

    ``check(value) -> str | None`` returns an error text (e.g. "must be > 0") or None.
    """
    meta = {"units": units, "doc": doc, "check": check}
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    if isinstance(default, (list, dict)):
        frozen = default
        return dataclasses.field(default_factory=lambda: type(frozen)(frozen), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# --- reusable checks --------------------------------------------------------

def positive(v):
    vals = v if isinstance(v, (tuple, list)) else [v]
    return None if all(x > 0 for x in vals) else "must be > 0"


def nonnegative(v):
    vals = v if isinstance(v, (tuple, list)) else [v]
    return None if all(x >= 0 for x in vals) else "must be >= 0"


def in_range(lo, hi):
    def check(v):
        vals = v if isinstance(v, (tuple, list)) else [v]
        return None if all(lo <= x <= hi for x in vals) else f"must be in [{lo}, {hi}]"
    return check


def nonempty(v):
    return None if len(v) > 0 else "must not be empty"


def all_of(*checks):
    def check(v):
        for c in checks:
            msg = c(v)
            if msg:
                return msg
        return None
    return check


# --- loading ----------------------------------------------------------------

def load_toml(path) -> dict:
    """Read a TOML file, turning every failure into an InputError naming it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input file {path} does not exist")
    if path.is_dir():
        raise InputError(f"input file {path} is a directory")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a text (UTF-8) file") from exc


def load(cls, path, overrides: dict | None = None):
    """Load ``path`` and build the schema ``cls`` from it (``overrides`` merged on top)."""
    data = load_toml(path)
    if overrides:
        data = _merge(data, overrides)
    return build(cls, data, source=str(path))


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def build(cls, data: dict, source: str = "<input>", prefix: str = ""):
    """Build dataclass ``cls`` from ``data`` (a dict from TOML), validating everything."""
    where = f"{source}: " + (f"[{prefix}] " if prefix else "")
    if not isinstance(data, dict):
        raise InputError(f"{where}expected a table, found {_tname(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        k = unknown[0]
        close = difflib.get_close_matches(k, list(fields), n=1, cutoff=0.6)
        hint = f"; did you mean '{_dotted(prefix, close[0])}'?" if close else ""
        raise InputError(f"{where}unknown key '{_dotted(prefix, k)}'{hint} "
                         f"(valid keys: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        key = _dotted(prefix, name)
        if name not in data:
            if f.default is _MISSING and f.default_factory is _MISSING:
                if dataclasses.is_dataclass(hints[name]):
                    kwargs[name] = build(hints[name], {}, source, key)
                    continue
                raise InputError(f"{source}: missing required key '{key}'"
                                 + (f" ({f.metadata.get('doc')})" if f.metadata.get("doc") else ""))
            continue
        value = _convert(hints[name], data[name], source, key)
        check = f.metadata.get("check")
        if check is not None and value is not None:
            msg = check(value)
            if msg:
                units = f.metadata.get("units")
                u = f" {units}" if units and units != "1" else ""
                raise InputError(f"{source}: key '{key}' = {data[name]!r}{u} {msg}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except InputError:
        raise
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}{exc}") from exc


def _dotted(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _tname(v):
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
            list: "an array", dict: "a table"}.get(type(v), type(v).__name__)


def _convert(tp, value, source, key):
    where = f"{source}: key '{key}'"
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, source, key)
            except InputError as exc:
                errors.append(str(exc))
        raise InputError(errors[0] if len(errors) == 1 else
                         f"{where} = {value!r} matches none of the allowed forms")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InputError(f"{where} = {value!r} is not one of {list(choices)}{hint}")
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, value, source, key)
    if origin in (tuple, list):
        if not isinstance(value, list):
            if origin is tuple and get_args(tp)[-1:] == (Ellipsis,):
                value = [value]   # a scalar where a list is expected: one-element list
            else:
                raise InputError(f"{where} expected an array, found {_tname(value)} {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise InputError(f"{where} expected {len(args)} values, found {len(value)}")
            items = [_convert(a, v, source, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            a = args[0] if args else Any
            items = [_convert(a, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is list:
        if not isinstance(value, list):
            raise InputError(f"{where} expected an array, found {_tname(value)} {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"{where} expected a table, found {_tname(value)}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise InputError(f"{where} expected true/false, found {_tname(value)} {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where} expected an integer, found {_tname(value)} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where} expected a number, found {_tname(value)} {value!r}")
        if not math.isfinite(value):
            raise InputError(f"{where} must be finite, found {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise InputError(f"{where} expected a string, found {_tname(value)} {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise InputError(f"{where} expected a path string, found {_tname(value)} {value!r}")
        return Path(value)
    raise TypeError(f"schema type {tp!r} for {key} is not supported")


# --- output -------------------------------------------------------------------

def to_dict(obj) -> dict:
    """The resolved input as plain TOML/JSON-compatible data (defaults applied)."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = _plain(v)
    return out


def _plain(v):
    if dataclasses.is_dataclass(v):
        return to_dict(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    return v


def reference_markdown(cls, prefix: str = "") -> str:
    """A markdown table of every key of ``cls`` (recursively): type, units, default, doc."""
    rows = []
    hints = typing.get_type_hints(cls)
    sub = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        key = _dotted(prefix, f.name)
        if dataclasses.is_dataclass(tp):
            sub.append((key, tp))
            continue
        if f.default is not _MISSING:
            default = f"`{f.default!r}`"
        elif f.default_factory is not _MISSING:
            default = f"`{f.default_factory()!r}`"
        else:
            default = "**required**"
        rows.append(f"| `{key}` | {_type_text(tp)} | {f.metadata.get('units', '') or ''} "
                    f"| {default} | {f.metadata.get('doc', '')} |")
    text = ""
    if rows:
        title = f"### `[{prefix}]`\n\n" if prefix else ""
        text += (title + "| key | type | units | default | meaning |\n|---|---|---|---|---|\n"
                 + "\n".join(rows) + "\n\n")
    for key, tp in sub:
        text += reference_markdown(tp, key)
    return text


def _type_text(tp) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " \\| ".join(f"`{c!r}`" for c in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in get_args(tp) if a is not type(None)) + " (optional)"
    if origin in (tuple, list):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return "array of " + (_type_text(args[0]) if args else "values")
    return {int: "integer", float: "number", str: "string", bool: "boolean", Path: "path"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def all_keys(cls, prefix: str = "") -> list[str]:
    """Every dotted key of a schema (for tests that docs and schema agree)."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = _dotted(prefix, f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            keys += all_keys(hints[f.name], key)
        else:
            keys.append(key)
    return keys
