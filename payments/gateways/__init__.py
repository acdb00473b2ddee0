"""Payment providers behind one interface (``base.Gateway``). ``get_gateway(name)`` gives the
configured instance; ``simulated`` is the default for the demo and the tests."""

from __future__ import annotations

from functools import cache

from .base import Gateway, GatewayError

#: name → "module:Class"
GATEWAYS = {
    "simulated": "payments.gateways.simulated:SimulatedGateway",
    "stripe": "payments.gateways.stripe:StripeGateway",
    "wallet": "payments.gateways.wallet:WalletGateway",
}
#: providers an operator can choose for cards, apps and terminals
SELECTABLE = ("simulated", "stripe")


@cache
def _load(name: str) -> Gateway:
    import importlib

    try:
        target = GATEWAYS[name]
    except KeyError:
        raise GatewayError(f"Unknown payment provider {name!r}; known: "
                           f"{', '.join(sorted(GATEWAYS))}.") from None
    module, _sep, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)()


def get_gateway(name: str) -> Gateway:
    return _load(name or "simulated")


def reset_gateways() -> None:
    """Forget the instances (tests that change a provider's settings)."""
    _load.cache_clear()
