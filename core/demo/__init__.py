"""The project's own demo detector: synthetic shapes, its model, training and evaluation."""
