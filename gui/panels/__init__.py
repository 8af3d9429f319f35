"""Docked panels: stage toggles and controls, thresholds, inspector."""
