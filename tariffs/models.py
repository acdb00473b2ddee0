"""Models of the tariffs app."""
