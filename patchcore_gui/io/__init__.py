"""Qt-free input/output: image decoding and report writers."""
