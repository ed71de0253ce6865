"""Data sets: one record per data set in a registry (classes, size, mean/std, raw layout, .beton
names), the raw on-disk formats, .beton writing, and the FFCV and torch loader backends."""
