"""`python -m cri …` = `tinykube cri …` (what the test helper runs)."""

import sys

from cri.cli import main

sys.exit(main(sys.argv[1:]))
