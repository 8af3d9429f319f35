"""Run under torchrun by test_analyze: ``rcnn-lens analyze`` (core.cli.main, as ``-m core.cli`` runs it),
then one stderr line naming the threads this rank still has: the process group's threads must be
joined before the interpreter shuts down (a gloo thread alive then can abort the process)."""

import os
import sys
from pathlib import Path

from core.cli.main import main

if __name__ == "__main__":
    code = main(sys.argv[1:])
    task = Path("/proc/self/task")
    if task.is_dir():
        names = sorted((t / "comm").read_text().strip() for t in task.iterdir())
        sys.stderr.flush()  # one write, its newline included: the two ranks share stderr
        os.write(2, f"rank {os.environ.get('RANK')} threads at exit: {' '.join(names)}\n".encode())
    sys.exit(code)
