"""Where the shipped assets live (no heavy imports: the GUI process uses this)."""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEMO_WEIGHTS = ASSETS / "demo_shapes.pt"
DEMO_IMAGES = ASSETS / "demo"
