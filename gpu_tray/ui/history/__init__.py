"""The history window: plots per host and the hour-of-week heatmap."""
