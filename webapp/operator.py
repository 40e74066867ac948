"""Operators: the payments, what providers said about each, refunds and flags; refunding.

Two doors, one credential (``OPERATOR_TOKEN``, see ``settings.operator_token``):

- the JSON API under ``/api/operator``, for scripts: ``Authorization: Bearer <token>``;
- the pages under ``/operator``, for people: the token typed once into a form (CSRF-protected),
  then remembered in the signed session as a digest of the token, so changing the token
  logs everyone out.

Tokens are compared with ``hmac.compare_digest``. With no token configured (production
without OPERATOR_TOKEN) both doors answer 503.
"""

import hashlib
import hmac

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, session, url_for

from ..adapters.sql import queries
from ..core.errors import (
    InvalidAmount,
    NotSupported,
    PaymentNotFound,
    RefundFailed,
    RefundPending,
    RefundRefused,
    UnknownProvider,
)
from ..core.model import PaymentStatus
from .context import services

pages = Blueprint("operator", __name__, url_prefix="/operator")
api = Blueprint("operator_api", __name__, url_prefix="/api/operator")

STATUSES = [status.name.lower() for status in PaymentStatus]


def _token() -> str:
    token = current_app.config.get("OPERATOR_TOKEN")
    if not token:
        abort(503, description="operator access is off: set OPERATOR_TOKEN")
    return token


def _digest(token: str) -> str:
    return hashlib.sha256(b"gmall-operator:" + token.encode("utf-8")).hexdigest()


def _listing_args() -> dict:
    status = request.args.get("status") or None
    attention = request.args.get("attention") or None
    if status not in (None, *STATUSES) or attention not in (None, *queries.ATTENTION):
        abort(400, description=f"status is one of {', '.join(STATUSES)}; attention one of "
                               f"{', '.join(queries.ATTENTION)}")
    try:
        limit = min(max(int(request.args.get("limit", 50)), 1), 500)
    except ValueError:
        abort(400, description="limit is a number")
    return {"status": status, "attention": attention, "order_sn": request.args.get("order_sn") or None,
            "limit": limit}


# the JSON API


@api.before_request
def bearer_only():
    token = _token()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        response = jsonify(error="unauthorized", message="send Authorization: Bearer <OPERATOR_TOKEN>")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="gmall-payment operators"'
        return response
    return None


@api.get("/payments")
def list_payments():
    """Payments, newest first; ?status=paid, ?attention=flagged|owed|attention, ?order_sn=, ?limit="""
    return jsonify(payments=queries.payments(**_listing_args()))


@api.get("/payments/<int:payment_id>")
def show_payment(payment_id):
    view = queries.payment(payment_id)
    if view is None:
        abort(404, description=str(PaymentNotFound(payment_id)))
    return jsonify(view)


@api.post("/payments/<int:payment_id>/refunds")
def refund(payment_id):
    """Refund ``{"amount": "12.30", "out_request_no": "R-1"}`` of the payment (the same
    out_request_no again is the same refund): 200 with the refund and the payment; 202 while
    the provider's answer is unknown (retry with the same out_request_no)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not body.get("out_request_no") or "amount" not in body:
        return _error(400, "bad_request", 'send JSON {"amount": "12.30", "out_request_no": "R-1"}')
    if isinstance(body["amount"], float):
        return _error(400, "invalid_amount", "send the amount as a string of yuan, e.g. \"12.30\"")
    try:
        done = services().refunds.refund(payment_id, body["amount"], body["out_request_no"])
    except PaymentNotFound as error:
        return _error(404, "not_found", str(error))
    except InvalidAmount as error:
        return _error(400, "invalid_amount", str(error))
    except RefundRefused as error:
        return _error(400 if error.reason == "bad_request_no" else 409, error.reason, str(error))
    except RefundPending as error:
        return _refund_answer(202, payment_id, error.refund.out_request_no, error="refund_pending", message=str(error))
    except RefundFailed as error:
        return _error(409, "refund_failed", str(error))
    except (NotSupported, UnknownProvider) as error:
        return _error(409, "not_supported", str(error))
    return _refund_answer(200, payment_id, done.out_request_no)


def _refund_answer(status, payment_id, out_request_no, **extra):
    view = queries.payment(payment_id)
    [refund] = [r for r in view.pop("refunds") if r["out_request_no"] == out_request_no]
    view.pop("order_payments")
    view.pop("notifications")
    response = jsonify(refund=refund, payment=view, **extra)
    response.status_code = status
    return response


def _error(status, error, message):
    response = jsonify(error=error, message=message)
    response.status_code = status
    return response


@api.errorhandler(400)
@api.errorhandler(404)
@api.errorhandler(503)
def api_error(error):
    return _error(error.code, error.name.lower().replace(" ", "_"), error.description)


# the pages


def _logged_in() -> bool:
    token = current_app.config.get("OPERATOR_TOKEN")
    return bool(token) and hmac.compare_digest(session.get("operator", ""), _digest(token))


@pages.before_request
def operators_only():
    _token()
    if request.endpoint != "operator.login" and not _logged_in():
        return redirect(url_for("operator.login", next=request.full_path))
    return None


@pages.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        token = _token()
        if hmac.compare_digest(request.form.get("token", "").strip().encode(), token.encode()):
            session["operator"] = _digest(token)
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/operator") else url_for("operator.payments"))
        error = "令牌不对 / wrong token"
    return render_template("operator_login.html", error=error), 401 if error else 200


@pages.post("/logout")
def logout():
    session.pop("operator", None)
    return redirect(url_for("operator.login"))


@pages.get("/")
def home():
    return redirect(url_for("operator.payments"))


@pages.get("/payments")
def payments():
    args = _listing_args()
    return render_template("operator_payments.html", payments=queries.payments(**args), args=args,
                           statuses=STATUSES, attention=list(queries.ATTENTION))


@pages.get("/payments/<int:payment_id>")
def payment(payment_id):
    view = queries.payment(payment_id)
    if view is None:
        abort(404, description=str(PaymentNotFound(payment_id)))
    return render_template("operator_payment.html", p=view)
