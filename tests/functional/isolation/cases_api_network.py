"""The network, customer, token and session endpoints (emobility/api/network.py, accounts.py).

Rows are named by their keys (a location's code, a station's identity, an EVSE id, a customer's
reference, a token's uid, a session's CDR id): B's key answers 404 to every method, a filter
naming B's key lists nothing, and a write naming B's operator or customer is refused."""

from . import LIST, Case

API = {
    # lists filtered by B's keys: empty (never B's rows)
    "locations": Case(LIST, query=lambda w: {"region": w.b.location.region,
                                             "city": w.b.location.city}),
    "stations": Case(LIST, query=lambda w: {"location": w.b.location.code}),
    "evses": Case(LIST, query=lambda w: {"station": w.b.station.identity}),
    "sessions": Case(LIST, query=lambda w: {"evse": w.b.evse.evse_id}),
    # a customer for B's operator (its code in the body: 404) with B's customer's reference
    "customers": Case(LIST, methods=("GET", "POST"),
                      query=lambda w: {"email": w.b.customer.email},
                      body=lambda w: {"reference": w.b.customer.reference, "name": "walker",
                                      "country": "NL", "operator": w.b.operator.code}),
    # a token of A's for B's customer: 400 (no such customer of A's)
    "tokens": Case(LIST, methods=("GET", "POST"),
                   query=lambda w: {"customer": w.b.customer.reference},
                   body=lambda w: {"uid": "WALKER-NEW-1", "customer": w.b.customer.reference}),
    # B's rows by their keys
    "location": Case(kwargs=lambda w: {"code": w.b.location.code}),
    "station": Case(kwargs=lambda w: {"identity": w.b.station.identity}),
    "evse": Case(kwargs=lambda w: {"evse_id": w.b.evse.evse_id}),
    "customer": Case(kwargs=lambda w: {"reference": w.b.customer.reference},
                     methods=("GET", "PATCH"), body=lambda w: {"status": "blocked"}),
    "token": Case(kwargs=lambda w: {"uid": w.b.token.uid}, methods=("GET", "PATCH"),
                  body=lambda w: {"valid": False}),
    "session": Case(kwargs=lambda w: {"cdr_id": w.b.session.external_id}),
}

PORTAL = {}
