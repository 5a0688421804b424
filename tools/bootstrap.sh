#!/usr/bin/env bash
# Install what spia_mpi needs on Debian 12 and build the project venv.
#
# Idempotent: every step checks first and does nothing when already done, so
# `make test` / `make demo` can call it every time (≈1 s when all is present).
#
#   VENV      venv folder                       (default: .venv in the repo)
#   PYTHON    interpreter that sees Debian's packages (default: /usr/bin/python3)
#   SPIA_NO_APT=1   never call apt-get (report what is missing instead)
#
# GPAW (model.kind = "gpaw") comes from Debian too: gpaw 22.8 (MPI, ScaLAPACK, ELPA,
# libxc) and gpaw-data (PAW setups, dzp basis sets); the venv sees it through the
# system site packages.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$here/.venv}
PYTHON=${PYTHON:-/usr/bin/python3}
PETSC_COMPLEX=/usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-complex
SLEPC_COMPLEX=/usr/lib/slepcdir/slepc3.18/x86_64-linux-gnu-complex

debs=(python3-petsc4py-complex python3-slepc4py-complex python3-h5py-mpi python3-mpi4py
      python3-numpy python3-scipy python3-ase python3-spglib python3-matplotlib
      python3-venv python3-pytest openmpi-bin gpaw gpaw-data)

say() { printf '[bootstrap] %s\n' "$*"; }

missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ ${SPIA_NO_APT:-0} == 1 ]]; then
        say "missing Debian packages: ${missing[*]} (SPIA_NO_APT=1: not installing)"; exit 1
    fi
    sudo=""
    if [[ $(id -u) != 0 ]]; then
        command -v sudo >/dev/null || { say "need root or sudo to install: ${missing[*]}"; exit 1; }
        sudo=sudo
    fi
    say "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for d in "$PETSC_COMPLEX" "$SLEPC_COMPLEX"; do
    [[ -d $d/lib/python3/dist-packages ]] || { say "expected complex build at $d (is python3-petsc4py-complex installed?)"; exit 1; }
done

if [[ ! -x $VENV/bin/python ]]; then
    say "creating venv $VENV (system site packages, $PYTHON)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
fi
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# Select the complex-scalar PETSc/SLEPc builds for everything run from this venv.
printf '%s\n' "$PETSC_COMPLEX/lib/python3/dist-packages" "$SLEPC_COMPLEX/lib/python3/dist-packages" \
    > "$site/spia_mpi_petsc_complex.pth"

# Pin Debian's compiled packages so pip never replaces them (numpy>=2 breaks them).
constraints=$VENV/debian-constraints.txt
"$VENV/bin/python" - > "$constraints" <<'PY'
import importlib
for name in ("numpy", "scipy", "mpi4py", "ase", "matplotlib", "spglib"):
    try:
        mod = importlib.import_module(name)
        print(f"{name}=={mod.__version__}")
    except Exception:
        pass
PY

stamp=$VENV/.spia-pip-done
# i-PI (PIMD engine of `sample pimd`, pure Python, needs only numpy) is checked on its own
# so that venvs made before it was added get it too.
have_ipi() { "$VENV/bin/python" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("ipi") is None)'; }
if [[ ! -f $stamp || $here/setup.py -nt $stamp ]] || ! have_ipi; then
    say "installing test tools, i-PI and spia_mpi (editable) into the venv"
    "$VENV/bin/python" -m pip install -q -c "$constraints" "pytest>=8,<9" "pytest-timeout>=2" "ipi>=3.3,<4"
    # pytest-isolate-mpi depends on mpi4py, which Debian already provides: no deps.
    "$VENV/bin/python" -m pip install -q --no-deps "pytest-isolate-mpi==0.4.1"
    "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$here"
    touch "$stamp"
fi

"$VENV/bin/python" -m spia_mpi check-stack
