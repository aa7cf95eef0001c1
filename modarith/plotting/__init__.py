"""Figures, each returned with its caption: curves, sweeps, progress measures, attention maps."""
