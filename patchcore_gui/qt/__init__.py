"""Everything that imports Qt: the main window and its panels."""
