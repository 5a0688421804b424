#!/usr/bin/env python
"""Regenerate docs/input.md from the schema in spia_mpi/io/runinput.py and the demo input."""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spia_mpi.io import runinput  # noqa: E402

HEAD = """# Input reference for `spia_mpi run`

Generated from the schema in `spia_mpi/io/runinput.py` by `drivers/make_input_reference.py`
(also: `python -m spia_mpi run --print-reference`). Unknown keys are rejected with a
suggestion; every value is checked before any work starts, and the resolved input (with
all defaults) is stored in the results file under `/input`. Relative paths are relative
to the input file. Units: eV, Å, amu, K.

"""


def main():
    demo = (ROOT / "spia_mpi" / "data" / "demo.toml").read_text()
    text = HEAD + runinput.reference() + "\n## Example (the built-in demo)\n\n```toml\n" + demo + "```\n"
    (ROOT / "docs" / "input.md").write_text(text)
    print("wrote docs/input.md")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
