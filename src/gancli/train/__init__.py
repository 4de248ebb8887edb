"""Training: one plain loop (loop.train) around a family's Objective."""
