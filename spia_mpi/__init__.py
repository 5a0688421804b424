"""spia_mpi — the stochastic path-integral approach (SPIA), MPI-parallel.

Electron–ion coupling λ(m) on bosonic Matsubara frequencies and the
superconducting T_c of solids with anharmonic, quantum or diffusing ions,
from path-integral molecular dynamics (PIMD) configurations.

Modules (one concept each):

``eliashberg``      linearised Eliashberg equation, T_c, Allen–Dynes/McMillan
``supercells``      non-diagonal supercells, q-point coverage, k/q folding
``configurations``  PIMD configurations: in-memory type, readers, samplers
``models``          electronic Hamiltonians H(R) as (distributed) PETSc matrices
``resolvent``       projected quasi-static resolvents P†[z − H]^{-1}P
``spia``            Ḡ, renormalised bands, T-matrices, Γ, Bethe–Salpeter, λ(m)
``io``              HDF5 output/input, provenance, atomic writes
``parallel``        the one home of MPI: communicators, partitions, errors
``cli``             ``python -m spia_mpi <command>``

Units in the public API: eV, Å, amu, K (see :mod:`spia_mpi.units`).
"""

__version__ = "0.1.0"
