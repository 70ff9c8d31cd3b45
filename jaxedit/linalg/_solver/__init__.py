"""The pencil solvers (one module per solver; `base` is their common floor)."""
