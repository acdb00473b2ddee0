"""Models of the promotions app."""
