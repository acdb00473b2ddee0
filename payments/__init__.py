"""payments app (see DESIGN.md)."""
