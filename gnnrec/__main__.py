"""``python -m gnnrec ...``: the same as the ``gnnrec`` command."""

import sys

from gnnrec.cli import main

sys.exit(main())
