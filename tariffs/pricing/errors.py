"""The one exception of the pricing engine."""


class PricingInputError(ValueError):
    """A tariff or session that cannot be priced; the message names the offending field.

    ``field`` is the path of the field in the OCPI object (``elements[1].restrictions.start_time``)
    or ``None`` when the object as a whole is wrong.
    """

    def __init__(self, field: str | None, message: str):
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}" if field else message)
