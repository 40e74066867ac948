"""What every page of the shop must say about itself: the security headers (the one
Content-Security-Policy of the shop and its sandboxes) and the shop's design (its stylesheet,
a phone's viewport); tests/security/test_headers.py checks each page, providers' tests theirs."""

import re

VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


def policy(response) -> dict:
    """The Content-Security-Policy as {directive: [sources]}."""
    header = response.headers.get("Content-Security-Policy", "")
    return {name: sources for name, *sources in (part.split() for part in header.split(";") if part.strip())}


def assert_protected(response, where):
    csp = policy(response)
    assert csp.get("default-src") == ["'self'"], where
    assert csp.get("frame-ancestors") == ["'none'"] and response.headers.get("X-Frame-Options") == "DENY", (
        where
    )
    assert response.headers.get("X-Content-Type-Options") == "nosniff", where
    assert "'self'" in csp.get("form-action", []) and csp.get("object-src") == ["'none'"], where
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"], where


def assert_styled_as_the_shop(response, where):
    """The page has the shop's stylesheet and no other, a phone's viewport, no style attribute."""
    sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', response.text)
    assert sheets == ["/static/shop.css"], where
    assert VIEWPORT in response.text, where
    assert not re.search(r"<[^>]+\sstyle=", response.text), where


def assert_inline_code_has_the_nonce(response, where):
    """Every inline <script> and <style> carries this answer's nonce, every other script and
    stylesheet is the shop's own file (/static/); the page is styled as the shop's."""
    csp = policy(response)
    nonces = {source for source in csp["script-src"] if source.startswith("'nonce-")}
    assert len(nonces) == 1 and nonces == {s for s in csp["style-src"] if s.startswith("'nonce-")}, where
    nonce = nonces.pop()[len("'nonce-") : -1]
    tags = re.findall(r"<(script|style)\b([^>]*)>", response.text)
    for _, attributes in tags:
        assert f'nonce="{nonce}"' in attributes or re.search(r'\ssrc="/static/[\w.-]+\.js"', attributes), (
            where
        )
    assert_styled_as_the_shop(response, where)
