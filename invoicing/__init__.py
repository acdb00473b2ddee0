"""invoicing app (see DESIGN.md)."""
