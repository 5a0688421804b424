"""Example structures shipped with spia_mpi: Li₂MgH₁₆ of the paper's Table S1.

Fd-3m (227), a = 6.718513 Å. Table S1 lists fractional coordinates with Mg at
(0, 0, 0); expanded with the operations of origin choice 1 of Fd-3m (ASE
``setting=1``) they give exactly the stated multiplicities — 16 Li, 8 Mg,
32 + 96 H (solid, 250 GPa; 152 atoms in the conventional cell, 38 in the
primitive cell) and 8 more H at the previously empty site (superionic "effective
crystal", 260 GPa; 160 / 40 atoms). Shortest H–H distances: 1.04 Å (solid) and
1.03 Å (superionic). In origin choice 1 the site at (0, 0, 0) is Wyckoff 8a; the
table calls it 8b — the numbers, not the labels, define the structure.
"""
from __future__ import annotations

from ase.spacegroup import crystal

from spia_mpi.errors import InputError

A_LI2MGH16 = 6.718513  # Å

_SOLID = [("Li", (0.62500, 0.87500, 0.87500)), ("Mg", (0.0, 0.0, 0.0)),
          ("H", (0.83306, 0.16694, 0.16694)), ("H", (0.06466, 0.24560, 0.43534))]
_SUPERIONIC = [("Li", (0.62500, 0.87500, 0.87500)), ("Mg", (0.0, 0.0, 0.0)),
               ("H", (0.25000, 0.25000, 0.75000)), ("H", (0.84609, 0.15391, 0.15391)),
               ("H", (0.06318, 0.24933, 0.43682))]


def _build(sites, primitive: bool):
    atoms = crystal([s for s, _ in sites], basis=[p for _, p in sites], spacegroup=227, setting=1,
                    cellpar=[A_LI2MGH16] * 3 + [90] * 3, onduplicates="error")
    if primitive:
        import spglib
        from ase import Atoms
        lat, pos, num = spglib.find_primitive((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers),
                                              symprec=1e-4)
        atoms = Atoms(numbers=num, scaled_positions=pos, cell=lat, pbc=True)
    return atoms


def li2mgh16_solid(primitive: bool = True):
    """Solid Fd-3m Li₂MgH₁₆ at 250 GPa (Table S1): 38 atoms primitive, 152 conventional."""
    return _build(_SOLID, primitive)


def li2mgh16_superionic(primitive: bool = True):
    """Effective superionic Li₂MgH₁₆ at 260 GPa (Table S1, H density peaks): 40 / 160 atoms."""
    return _build(_SUPERIONIC, primitive)


def dense_hydrogen_sc(a: float = 1.6):
    """Simple cubic hydrogen with lattice constant ``a`` (Å): a toy dense metallic hydrogen
    (r_s ≈ 1.9 bohr at 1.6 Å) for the real-space-grid demo."""
    from ase import Atoms
    return Atoms("H", positions=[[0.0, 0.0, 0.0]], cell=[[a, 0, 0], [0, a, 0], [0, 0, a]], pbc=True)


EXAMPLES = {
    "hydrogen-sc": lambda: dense_hydrogen_sc(),
    "li2mgh16-solid": lambda: li2mgh16_solid(True),
    "li2mgh16-solid-conventional": lambda: li2mgh16_solid(False),
    "li2mgh16-superionic": lambda: li2mgh16_superionic(True),
    "li2mgh16-superionic-conventional": lambda: li2mgh16_superionic(False),
}


def load_structure(name_or_path: str):
    """A shipped example by name, or any file ASE can read (clear error otherwise)."""
    if name_or_path in EXAMPLES:
        return EXAMPLES[name_or_path]()
    from pathlib import Path
    p = Path(name_or_path)
    if not p.exists():
        raise InputError(f"structure {name_or_path}: no such file and not a shipped example "
                         f"({', '.join(EXAMPLES)})")
    import ase.io
    try:
        atoms = ase.io.read(p, parallel=False)
    except Exception as exc:  # noqa: BLE001 - ASE raises many types
        raise InputError(f"structure file {p}: ASE cannot read it ({type(exc).__name__}: {exc})") from exc
    if len(atoms) == 0 or abs(atoms.cell.volume) < 1e-6:
        raise InputError(f"structure file {p}: needs atoms and a 3D periodic cell")
    return atoms
