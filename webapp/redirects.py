"""Where a login may send the browser next: only to a path of this site, as a browser reads it.

Werkzeug, Flask, Flask-WTF and itsdangerous have no such check, so here is the one every
``next=`` of the shop goes through. Browsers read a URL with the WHATWG parser: they strip
leading and trailing C0 controls and spaces, drop every tab and newline, and take a backslash
for a slash, so ``/\\t/evil.example`` is ``//evil.example``, another site. A target is kept
only if a browser would read it unchanged as a path of this site.
"""

from urllib.parse import urlsplit

from werkzeug.exceptions import BadRequest


def _control(char: str) -> bool:
    return char < " " or char == "\x7f"


def local_path(target: str | None, under: str = "/") -> str | None:
    """``target`` if it is a path of this site under ``under``, else None (go to the home page).

    A newline would break the Location header: that is a 400 (raised before anything happens).
    """
    if not target:
        return None
    if "\r" in target or "\n" in target:
        raise BadRequest("next must not contain a newline")
    if any(map(_control, target)) or target != target.strip() or "\\" in target:
        return None  # what a browser would read differently from what is checked here
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    base = under.rstrip("/")
    if parts.path != base and not parts.path.startswith(base + "/"):
        return None
    return target
