"""`python -m maille_devstack`."""

import sys

from maille_devstack.cli import main

sys.exit(main())
