"""``python -m wavesmith`` (and ``torchrun -m wavesmith train ...``) run the CLI."""

import sys

from wavesmith.cli import main

if __name__ == "__main__":
    sys.exit(main())
