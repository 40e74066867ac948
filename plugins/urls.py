"""URLs and forms as the providers and their sandboxes send them: absolute notify and return URLs,
queries added to a URL, the Content-Type of a url-encoded form."""

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: The Content-Type of a body made by ``urlencode`` (a notification, a request to a sandbox's API).
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


def require_absolute_url(name: str, url: str) -> str:
    """``url`` if it is an absolute http(s) URL, else ValueError.

    A sandbox posts notifications from a background thread with no request to resolve a
    relative URL against, so the shop must pass absolute ones (as Alipay requires too).
    """
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an absolute http(s) URL, got {url!r}")
    return url


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to whatever query it already has."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))
