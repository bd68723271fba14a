"""ruler subsystem (see DESIGN.md)."""
