"""`python -m modelzoo` is the `modelzoo` command."""
import sys

from modelzoo.cli import main

sys.exit(main())
