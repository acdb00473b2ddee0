"""promotions app (see DESIGN.md)."""
