"""Whether a request was made by a page of this site's own origin, from what browsers say.

SameSite=Lax keeps the session cookie off other sites' sub-requests but sends it with their
top-level navigations (a link, ``location=``), and with every request of a sibling origin of
the same site; a GET that takes something (the flash sale's click) must tell those apart
itself. Browsers say where a request comes from in ``Sec-Fetch-Site`` (every current one);
without it, in ``Origin`` or ``Referer``. Only ``same-origin`` counts: ``none`` (a typed
address, a bookmark) is also what a link opened from another program says.
"""

from urllib.parse import urlsplit

from werkzeug.wsgi import get_host


def from_this_origin(environ, browser: bool) -> bool:
    """True if the browser says this origin made the request; with no such header at all,
    ``not browser``: an API client says nothing, while a browser navigation that hides where
    it comes from is not known to come from here."""
    fetch_site = environ.get("HTTP_SEC_FETCH_SITE")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    claimed = environ.get("HTTP_ORIGIN") or environ.get("HTTP_REFERER")
    if not claimed:
        return not browser
    parts = urlsplit(claimed)
    return (
        f"{parts.scheme}://{parts.netloc}".lower()
        == f"{environ['wsgi.url_scheme']}://{get_host(environ)}".lower()
    )
