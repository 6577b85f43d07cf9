"""Builtin plugins. Each module is an ordinary plugin, written exactly as an external one would be."""
