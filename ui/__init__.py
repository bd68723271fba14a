"""ui subsystem (see DESIGN.md)."""
