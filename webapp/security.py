"""HTTP security of every answer: headers (flask-talisman for Flask's pages, a WSGI wrapper for
the sites mounted beside it), the session cookie's flags, and the trusted load balancers.

One Content-Security-Policy for the shop and its sandboxes: its own origin only, no inline
script or style without the request's nonce (templates use ``csp_nonce()``), never framed, and
forms may post to the shop, to ``PUBLIC_URL`` and to the sites the enabled providers send the
shopper to (Alipay's gateway: its checkout form posts there). No redirect to https is forced
(the load balancer does it; health checks stay plain); HSTS goes with every https answer.
"""

from collections.abc import Iterable, Mapping

from flask import Flask
from flask_talisman import DENY, Talisman
from werkzeug.middleware.proxy_fix import ProxyFix

from ..ports.provider import Provider, origins
from ..ports.settings import number

#: What every answer beneath Flask (the sandboxes' sites) carries too, beside the policy.
HEADERS = (
    ("X-Frame-Options", DENY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
)


def content_security_policy(config: Mapping, providers: Iterable[Provider]) -> dict:
    form_targets = ["'self'", *origins(config.get("PUBLIC_URL") or "")]
    for provider in providers:
        form_targets += [origin for origin in provider.checkout_origins() if origin not in form_targets]
    return {
        "default-src": "'self'",
        "script-src": "'self'",  # talisman adds the request's nonce to these two
        "style-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "frame-ancestors": "'none'",
        "form-action": " ".join(form_targets),
    }


def protect(app: Flask, providers: Iterable[Provider]) -> dict:
    """Put talisman on ``app`` with the shop's policy; returns the policy, for ``with_headers``."""
    policy = content_security_policy(app.config, providers)
    Talisman(
        app,
        force_https=False,
        frame_options=DENY,
        content_security_policy=policy,
        content_security_policy_nonce_in=["script-src", "style-src"],
        # The cookie's flags are settings (SESSION_COOKIE_SECURE: in PRODUCTION); talisman would
        # force Secure over the embedded default's plain http, and reset SameSite to its own.
        session_cookie_secure=False,
        session_cookie_samesite=app.config["SESSION_COOKIE_SAMESITE"],
    )
    return policy


class WithHeaders:
    """A WSGI site whose answers get ``headers`` it does not set itself (the sandboxes' sites,
    which talisman cannot reach); its attributes show through, so it still reads as the site."""

    def __init__(self, site, policy: Mapping[str, str]):
        self.site = site
        self.headers = (
            ("Content-Security-Policy", "; ".join(f"{key} {value}" for key, value in policy.items())),
            *HEADERS,
        )

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers.extend(header for header in self.headers if header[0].lower() not in present)
            return start_response(status, headers, exc_info)

        return self.site(environ, start)

    def __getattr__(self, name):  # what the wrapper itself lacks
        if name == "site":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.site, name)


def trusted_proxies(config: Mapping) -> int:
    """How many load balancers are in front (TRUSTED_PROXIES, checked by ``settings.read``; 0: none)."""
    return number(config["TRUSTED_PROXIES"], "TRUSTED_PROXIES", kind=int)


def behind_proxies(app: Flask) -> None:
    """Trust the X-Forwarded-For, -Proto, -Host and -Port of TRUSTED_PROXIES balancers, outside
    every other layer (the click's fast path and the sandboxes read the client's address too);
    with 0, the headers are anybody's and nothing reads them."""
    count = trusted_proxies(app.config)
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count)
