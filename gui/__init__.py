"""R-CNN Lens desktop app (PySide6 + pyqtgraph). Imports core, never torch: the model runs in an
engine process (core.engine.server) driven by gui.worker."""
