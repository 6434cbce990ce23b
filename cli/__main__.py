"""`python -m edgeai.cli`."""

import sys

from edgeai.cli import main

sys.exit(main())
