"""``python -m core.cli``: the command-line tools (what ``rcnn-lens trace|export|...`` runs)."""

import sys

from core.cli.main import main

sys.exit(main())
