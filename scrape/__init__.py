"""scrape subsystem (see DESIGN.md)."""
