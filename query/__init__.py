"""query subsystem (see DESIGN.md)."""
