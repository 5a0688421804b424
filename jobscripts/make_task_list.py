#!/usr/bin/env python
"""Expand a scan description into input files and a task list for the array job scripts.

scan.toml::

    base = "input.toml"            # the input every point starts from
    out = "scan"                   # folder for the generated inputs
    [parameters]                   # dotted input keys → list of values (full Cartesian product)
    "configurations.einstein.n_beads" = [8, 16, 32]
    "spia.matsubara_j" = [8, 16]

Writes one input per point (out/point_XXX.toml, with its own output file) and prints the
task list (one "run <input>" line per point) to stdout. Every generated input is validated
with the schema of `spia_mpi run` before the list is printed: a misspelled key or a bad value
is an error naming the point file and the key (exit status 2), so nothing broken reaches the
cluster. Relative file names of the base input (configurations.file, model.grid.structure,
potential files) are made absolute, so the points find them from the out folder.

    python jobscripts/make_task_list.py scan.toml > tasks.txt
"""
import argparse
import itertools
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# input keys that name files, resolved against the base input's folder
PATH_KEYS = ("configurations.file", "model.grid.structure", "model.grid.potential_files",
             "model.grid.reference_potential_file", "model.gpaw.structure", "model.gpaw.reference")


class ScanError(Exception):
    """A bad scan description or a generated input that `spia_mpi run` would refuse."""


def get_key(d, dotted):
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def absolute_paths(point, folder: Path):
    """Relative file names of PATH_KEYS that exist relative to ``folder`` → absolute."""
    def fix(name):
        if not isinstance(name, str) or not name or Path(name).is_absolute():
            return name
        return str(folder / name) if (folder / name).exists() or "{" in name else name
    for key in PATH_KEYS:
        v = get_key(point, key)
        if v is not None:
            set_key(point, key, [fix(x) for x in v] if isinstance(v, list) else fix(v))


def read_spec(path):
    """(scan description, folder, base input) with clear errors for a bad description."""
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScanError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScanError(f"{path}: not valid TOML ({exc})") from None
    root = path.resolve().parent
    unknown = set(spec) - {"base", "out", "ranks", "parameters"}
    if unknown:
        raise ScanError(f"{path}: unknown key(s) {sorted(unknown)} (valid: base, out, ranks, [parameters])")
    if "base" not in spec or not spec.get("parameters"):
        raise ScanError(f"{path}: needs base = \"input.toml\" and a [parameters] table with at least one key")
    for name, values in spec["parameters"].items():
        if not isinstance(values, list) or not values:
            raise ScanError(f"{path}: parameters.\"{name}\" must be a non-empty list of values")
    try:
        base = tomllib.loads((root / spec["base"]).read_text())
    except FileNotFoundError:
        raise ScanError(f"{path}: base input {root / spec['base']} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScanError(f"{root / spec['base']}: not valid TOML ({exc})") from None
    return spec, root, base


def validate(point_path):
    """Load a generated input with the schema of `spia_mpi run` (ScanError on any problem)."""
    from spia_mpi.errors import InputError
    from spia_mpi.io.runinput import load_run_input
    try:
        load_run_input(point_path)
    except InputError as exc:
        raise ScanError(str(exc)) from None


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
    """Write and validate one input per parameter point; returns (spec, out folder, names, points)
    with points = [(input path, results path, {name: value})]. ScanError on any problem."""
    spec, root, base = read_spec(path)
    out = root / spec.get("out", "scan")
    out.mkdir(parents=True, exist_ok=True)
    names = list(spec["parameters"])
    points = []
    for i, values in enumerate(itertools.product(*(spec["parameters"][n] for n in names))):
        point = tomllib.loads(dump(base))            # deep copy
        for n, v in zip(names, values):
            set_key(point, n, v)
        absolute_paths(point, root)
        res = out / f"point_{i:03d}.h5"
        set_key(point, "output.file", str(res))
        for k, v in (extra_output or {}).items():
            set_key(point, k, v)
        p = out / f"point_{i:03d}.toml"
        p.write_text("# " + ", ".join(f"{n} = {v}" for n, v in zip(names, values)) + "\n" + dump(point))
        validate(p)
        points.append((p, res, dict(zip(names, values))))
    return spec, out, names, points


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec", help="scan description (TOML)")
    args = ap.parse_args(argv)
    try:
        pts = expand(args.spec)[3]
    except ScanError as exc:
        print(f"make_task_list: error: {exc}", file=sys.stderr)
        return 2
    for p, _, _ in pts:
        print(f"run {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
