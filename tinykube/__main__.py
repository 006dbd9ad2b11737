import sys

from tinykube.cli import main

sys.exit(main())
