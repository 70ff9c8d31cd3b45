"""``python -m jaxedit.cli ...``: the same as the ``jaxedit`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
