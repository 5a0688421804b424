"""``python -m spia_mpi`` entry point."""
import sys

from spia_mpi.cli import main

if __name__ == "__main__":
    sys.exit(main())
