"""`python -m omuda.cli ...` (and `torchrun ... -m omuda.cli ...`): the `omuda` command."""

import sys

from omuda.cli import main

# Guarded: `omuda synth`'s worker processes start fresh and import this module again.
if __name__ == "__main__":
    sys.exit(main())
