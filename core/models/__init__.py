"""Models: the presets, the user's builders, checkpoints and weights, and loading them into a
torchvision ``GeneralizedRCNN`` (``core.models.load.load_model``). The bottom layer: imports no other
package of ``core`` (but the demo detector's architecture, a preset's builder)."""
