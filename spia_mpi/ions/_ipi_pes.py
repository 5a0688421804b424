"""i-PI 'custom' PES bridging to an in-memory ASE calculator (used by :mod:`spia_mpi.ions.pimd`).

i-PI's ``<ffdirect><pes>custom</pes><pes_path>THIS FILE</pes_path>`` mechanism
executes this file and instantiates ``__DRIVER_CLASS__`` with the
``<parameters>`` dictionary. The only parameter is ``key``: the entry of
:data:`spia_mpi.ions.pimd._CALCULATORS` holding (template Atoms, ASE calculator, rotation R
from the user's frame into i-PI's: the calculator sees r_user = r_ipi Rᵀ, forces go back as F R).
i-PI hands over the cell (i-PI h, vectors as columns) and the flat positions in
atomic units; the driver returns energy and forces in atomic units (virial zero:
constant-volume runs only, so the calculator is never asked for a stress).

Written here (not i-PI's ``ipi.pes._ase.ASEDriver``) because that driver reads
its template from a file and, in ipi 3.3.1, fails with has_stress=False
("stress tensor should have shape (3,3) but it has shape (9,)").
"""
__DRIVER_NAME__ = "spia_ase"
__DRIVER_CLASS__ = "SpiaASEDriver"

import numpy as np
from ipi.pes.dummy import Dummy_driver
from ipi.utils.units import unit_to_internal, unit_to_user


class SpiaASEDriver(Dummy_driver):
    def __init__(self, key, *args, **kwargs):
        self.key = str(key)
        super().__init__(*args, **kwargs)

    def check_parameters(self):
        from spia_mpi.ions.pimd import _CALCULATORS
        template, calc, self.rotation = _CALCULATORS[self.key]
        self.atoms = template.copy()
        self.atoms.calc = calc

    def compute_structure(self, cell, pos):
        atoms, R = self.atoms, self.rotation                 # i-PI frame = user frame @ R
        atoms.set_cell(unit_to_user("length", "angstrom", np.asarray(cell).T) @ R.T)   # rows in ASE
        atoms.set_positions(unit_to_user("length", "angstrom", np.asarray(pos)).reshape(-1, 3) @ R.T)
        energy = atoms.get_potential_energy()                 # eV
        forces = atoms.get_forces() @ R                       # eV/Å, into i-PI's frame
        virial = np.zeros((3, 3))       # NVT only: no stress requested from the calculator
        return (float(unit_to_internal("energy", "electronvolt", energy)),
                np.asarray(unit_to_internal("force", "ev/ang", forces), float).reshape(np.shape(pos)),
                np.asarray(unit_to_internal("energy", "electronvolt", virial.T), float),
                "")
