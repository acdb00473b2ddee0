"""Which VAT regime a sale is under. Pure Python.

Reverse charge (Article 196 of Council Directive 2006/112/EC): a business customer established in
another EU member state than the seller, with a valid VAT number, accounts for the VAT itself;
the seller charges none and says so on the invoice.
"""

from stdnum.eu import vat as eu_vat

EU_COUNTRIES = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
    "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})


def reverse_charge_applies(*, seller_country: str, buyer_country: str, buyer_vat_number: str,
                           buyer_is_business: bool) -> bool:
    seller, buyer = seller_country.upper(), buyer_country.upper()
    return (buyer_is_business and seller in EU_COUNTRIES and buyer in EU_COUNTRIES
            and seller != buyer and bool(buyer_vat_number) and eu_vat.is_valid(buyer_vat_number)
            and eu_vat.compact(buyer_vat_number)[:2].replace("EL", "GR") == buyer)
