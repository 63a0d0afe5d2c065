import sys

from gradual_transfer.cli import main

sys.exit(main())
