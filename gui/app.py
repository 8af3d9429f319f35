"""``rcnn-lens [IMAGE... | FOLDER | ANALYSIS_FOLDER] [--model NAME] [--weights SPEC] [--annotations A]``:
the desktop app.

The window shows first; torch, the model and the first trace load in the engine process."""

from __future__ import annotations

import argparse
import os
import sys
import time

T0 = time.perf_counter()


def parse(argv):
    ap = argparse.ArgumentParser(prog="rcnn-lens", description="R-CNN Lens: see how an image travels through a "
                                 "Faster R-CNN. Sub-commands: trace, export, analyze, compare, anchors, models, "
                                 "download (rcnn-lens trace -h).")
    ap.add_argument("images", nargs="*", metavar="IMAGE",
                    help="images, a folder of them, or the OUT folder of `rcnn-lens analyze` (its images, most "
                         "missed objects first) or of `rcnn-lens compare` (its objects, the changed first; B flips runs)")
    ap.add_argument("--model", default=None,
                    help="a preset (see `rcnn-lens models`), auto (the preset the checkpoint fits; the default with "
                         "a checkpoint) or your builder path/to/file.py:function or package.module:function (runs "
                         "your code); default: the last model, or demo")
    ap.add_argument("--weights", default=None,
                    help="demo, coco, random, random:SEED or a checkpoint (.pt/.pth/.ckpt/.safetensors)")
    ap.add_argument("--trust", action="store_true",
                    help="load a whole pickled model (torch.save(model)) with weights_only=False: runs code from the "
                         "file; only for files you made (for this run only, never remembered)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--annotations", default=None, metavar="FILE|FOLDER",
                    help="ground truth: a COCO .json, VOC .xml (or folder), YOLO .txt (or folder with classes.txt); "
                         "default: found beside each image (the demo scenes ship theirs)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the training view's random minibatches")
    ap.add_argument("--debug", action="store_true", help="the engine prints tracebacks (your builder's errors)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    """The ``rcnn-lens`` console script: a sub-command goes to the Qt-free core CLI, anything else
    starts the desktop app."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from core.cli.main import COMMANDS

    if argv and argv[0] in COMMANDS:
        from core.cli.main import main as cli_main

        return cli_main(argv)
    args = parse(argv)
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") \
            and not os.environ.get("QT_QPA_PLATFORM"):
        print("rcnn-lens: no display: set DISPLAY (or run under xvfb-run); the command-line tools "
              "`rcnn-lens trace` and `rcnn-lens export` need none", file=sys.stderr)
        return 1
    for p in [*args.images, *([args.annotations] if args.annotations else [])]:
        if not os.path.exists(p):
            print(f"rcnn-lens: {p}: no such file", file=sys.stderr)
            return 1
    if args.seed is not None and args.seed < 0:
        print(f"rcnn-lens: --seed {args.seed}: must be >= 0", file=sys.stderr)
        return 1
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("rcnn-lens")
    app.setOrganizationName("rcnn-lens")
    from .main_window import MainWindow

    if args.debug:
        os.environ["RCNN_LENS_DEBUG"] = "1"  # the engine process inherits it
    from core.models.choice import app_model

    win = MainWindow(args.images, app_model(args.model, args.weights), args.weights, args.device, trust=args.trust,
                     annotations=args.annotations, seed=args.seed)
    win.show()
    if os.environ.get("RCNN_LENS_REPORT_SHOWN"):
        app.processEvents()
        print(f"shown {time.perf_counter() - T0:.3f}", flush=True)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
