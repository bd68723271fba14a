"""agent subsystem (see DESIGN.md)."""
