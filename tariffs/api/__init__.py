"""The tariffs app's REST API (docs/api.md)."""
