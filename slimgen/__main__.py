import sys

from slimgen.cli import main

sys.exit(main())
