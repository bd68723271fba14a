"""compat subsystem (see DESIGN.md)."""
