"""Models of the invoicing app."""
