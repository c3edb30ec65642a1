import sys

from tests.e2e.lifecycle import main

sys.exit(main())
