"""`python -m omuda.cli ...` (and `torchrun ... -m omuda.cli ...`): the `omuda` command."""

import sys

from omuda.cli import main

sys.exit(main())
