"""Qt viewer (the only package that imports PyQt6/pyqtgraph)."""
