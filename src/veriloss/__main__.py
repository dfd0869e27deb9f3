"""``python -m veriloss``: the ``veriloss`` command."""

import sys

from .cli import main

sys.exit(main())
