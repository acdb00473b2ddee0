"""eMobility billing back office: the project and its core domain.

The Celery app is loaded by ``EmobilityConfig.ready()`` rather than here, so that pure modules of
this package (``emobility.money``) can be imported by the pricing engine without pulling in Celery.
"""
