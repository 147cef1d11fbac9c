"""The `atelier` command line: a thin shell over the library (one module per command)."""
