"""Qt-free PatchCore engine: features, memory bank, search, model file, datasets, metrics."""
