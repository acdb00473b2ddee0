"""Text that goes into a CSV file a person will open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) is run as a
formula by Excel, LibreOffice and Google Sheets: a CDR field or a customer name crafted that way
could leak data or run commands on the reader's machine (CSV injection). Every export and report
passes its text through ``spreadsheet_safe``, which makes such a cell plain text by putting an
apostrophe in front. Numbers (``Decimal``, ``int``) are left alone.
"""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
