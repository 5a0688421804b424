#!/usr/bin/env python
"""Expand a scan description into input files and a task list for the array job scripts.

scan.toml::

    base = "input.toml"            # the input every point starts from
    out = "scan"                   # folder for the generated inputs
    [parameters]                   # dotted input keys → list of values (full Cartesian product)
    "configurations.einstein.n_beads" = [8, 16, 32]
    "spia.matsubara_j" = [8, 16]

Writes one input per point (out/point_XXX.toml, with its own output file) and prints the
task list (one "run <input>" line per point) to stdout.

    python jobscripts/make_task_list.py scan.toml > tasks.txt
"""
import itertools
import sys
import tomllib
from pathlib import Path


def set_key(d, dotted, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def dump(d, prefix=""):
    """Minimal TOML writer for nested tables of scalars and lists."""
    lines, tables = [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {fmt(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables:
        name = f"{prefix}.{k}" if prefix else k
        out += f"\n[{name}]\n" + dump(v, name)
    return out


def fmt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return repr(v)


def expand(path, extra_output=None):
    """Write one input per parameter point; returns (spec, out folder, names, points)
    with points = [(input path, results path, {name: value})]."""
    spec = tomllib.loads(Path(path).read_text())
    root = Path(path).resolve().parent
    base = tomllib.loads((root / spec["base"]).read_text())
    out = root / spec.get("out", "scan")
    out.mkdir(parents=True, exist_ok=True)
    names = list(spec["parameters"])
    points = []
    for i, values in enumerate(itertools.product(*(spec["parameters"][n] for n in names))):
        point = tomllib.loads(dump(base))            # deep copy
        for n, v in zip(names, values):
            set_key(point, n, v)
        res = out / f"point_{i:03d}.h5"
        set_key(point, "output.file", str(res))
        for k, v in (extra_output or {}).items():
            set_key(point, k, v)
        p = out / f"point_{i:03d}.toml"
        p.write_text("# " + ", ".join(f"{n} = {v}" for n, v in zip(names, values)) + "\n" + dump(point))
        points.append((p, res, dict(zip(names, values))))
    return spec, out, names, points


def main(path):
    for p, _, _ in expand(path)[3]:
        print(f"run {p}")


if __name__ == "__main__":
    main(sys.argv[1])
