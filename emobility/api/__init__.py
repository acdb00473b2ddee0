"""What every API endpoint shares: API-key authentication, the operator a request acts for, the
bounded JSON parser, the one error body and the ``/api/v1/`` URL root (docs/api.md)."""
