"""Reports of an experiment: figures (plots.py) and the markdown summary (summary.py), from result tables."""
