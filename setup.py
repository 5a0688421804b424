"""spia_mpi: electron–ion coupling and T_c from path-integral configurations."""
import re
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = re.search(r'__version__ = "([^"]+)"',
                    (here / "spia_mpi" / "__init__.py").read_text()).group(1)

setup(
    name="spia_mpi",
    version=version,
    description=("Stochastic path-integral approach: electron-ion coupling "
                 "lambda(m) on Matsubara frequencies and superconducting T_c "
                 "from PIMD configurations, MPI-parallel with PETSc/SLEPc"),
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["spia_mpi", "spia_mpi.*"]),
    package_data={"spia_mpi": ["data/*", "data/**/*"]},
    python_requires=">=3.11",
    # petsc4py/slepc4py (complex scalars) and h5py (MPI build) come from the
    # system (Debian, conda-forge, Spack or modules): pip cannot build the
    # right variants, so they are checked at run time, not declared here.
    install_requires=["numpy", "scipy", "ase", "mpi4py"],
    extras_require={"test": ["pytest", "pytest-timeout", "pytest-isolate-mpi"],
                    "plot": ["matplotlib"], "pimd": ["ipi>=3.3,<4"]},
    entry_points={"console_scripts": ["spia-mpi = spia_mpi.cli:main"]},
    classifiers=["Programming Language :: Python :: 3",
                 "Topic :: Scientific/Engineering :: Physics"],
)
