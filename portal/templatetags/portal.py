from django import template

register = template.Library()


@register.simple_tag
def query_with(request, **changes):
    """The request's query string with ``changes`` applied (a value of ``None`` drops the key),
    for links that keep the filters: ``?{% query_with request page=2 %}``."""
    query = request.GET.copy()
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return query.urlencode()


@register.simple_tag
def query_page(request, param: str, number: int):
    """The request's query string with the page parameter ``param`` set to ``number``."""
    return query_with(request, **{param: number})
