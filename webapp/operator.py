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
from dataclasses import asdict, dataclass

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

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
from ..core.model import PaymentStatus, label
from .context import services
from .formatting import money
from .redirects import local_path
from .throttles import throttles, too_many_attempts

pages = Blueprint("operator", __name__, url_prefix="/operator")
api = Blueprint("operator_api", __name__, url_prefix="/api/operator")

STATUSES = [status.name.lower() for status in PaymentStatus]
#: The bill runs the page shows.
BILL_RUNS_SHOWN = 60
#: The one account of the operator page, as its login throttle counts it (one token for all).
OPERATORS = "operators"


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
        abort(
            400,
            description=f"status is one of {', '.join(STATUSES)}; attention one of "
            f"{', '.join(queries.ATTENTION)}",
        )
    try:
        limit = min(max(int(request.args.get("limit", 50)), 1), 500)
    except ValueError:
        abort(400, description="limit is a number")
    return {
        "status": status,
        "attention": attention,
        "order_sn": request.args.get("order_sn") or None,
        "search": (request.args.get("q") or "").strip() or None,
        "limit": limit,
    }


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


@api.get("/payments/<id:payment_id>")
def show_payment(payment_id):
    view = queries.payment(payment_id)
    if view is None:
        abort(404, description=str(PaymentNotFound(payment_id)))
    return jsonify(view)


@api.get("/bills")
def list_bill_runs():
    """The runs over the providers' daily bills, newest first (?limit=, at most 500)."""
    try:
        limit = min(max(int(request.args.get("limit", BILL_RUNS_SHOWN)), 1), 500)
    except ValueError:
        abort(400, description="limit is a number")
    return jsonify(bill_runs=[bill_run_view(run) for run in services().bills.runs(limit)])


def bill_run_view(run) -> dict:
    """A bill run as the API shows it: dates as ISO text, differences as a list."""
    view = asdict(run)
    view.update(
        bill_date=run.bill_date.isoformat(),
        started_at=run.started_at.isoformat(),
        finished_at=run.finished_at.isoformat(),
        differences=list(run.differences),
    )
    return view


@api.post("/payments/<id:payment_id>/refunds")
def refund(payment_id):
    """Refund ``{"amount": "12.30", "out_request_no": "R-1"}`` of the payment (the same
    out_request_no again is the same refund): 200 with the refund and the payment; 202 while
    the provider's answer is unknown (retry with the same out_request_no)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not body.get("out_request_no") or "amount" not in body:
        return _error(400, "bad_request", 'send JSON {"amount": "12.30", "out_request_no": "R-1"}')
    if isinstance(body["amount"], float):
        return _error(400, "invalid_amount", 'send the amount as a string of yuan, e.g. "12.30"')
    outcome = refund_through_service(payment_id, body["amount"], body["out_request_no"])
    if outcome.status == 202:
        return _refund_answer(
            202, payment_id, outcome.out_request_no, error=outcome.error, message=outcome.message
        )
    if outcome.error:
        return _error(outcome.status, outcome.error, outcome.message)
    return _refund_answer(200, payment_id, outcome.out_request_no)


@dataclass(frozen=True)
class RefundOutcome:
    """What asking for a refund came to, for both doors: the HTTP status, the error's code (None
    when done) and a message."""

    status: int
    error: str | None
    message: str
    out_request_no: str = ""


def refund_through_service(payment_id: int, amount, out_request_no: str) -> RefundOutcome:
    """Refund through the refund service, as the CLI does; every refusal as a RefundOutcome."""
    try:
        done = services().refunds.refund(payment_id, amount, out_request_no)
    except PaymentNotFound as error:
        return RefundOutcome(404, "not_found", str(error))
    except InvalidAmount as error:
        return RefundOutcome(400, "invalid_amount", str(error))
    except RefundRefused as error:
        return RefundOutcome(400 if error.reason == "bad_request_no" else 409, error.reason, str(error))
    except RefundPending as error:
        return RefundOutcome(202, "refund_pending", str(error), error.refund.out_request_no)
    except RefundFailed as error:
        return RefundOutcome(409, "refund_failed", str(error))
    except (NotSupported, UnknownProvider) as error:
        return RefundOutcome(409, "not_supported", str(error))
    return RefundOutcome(
        200,
        None,
        f"refund {done.out_request_no}: {money(done.amount)} {label(done.status)}",
        done.out_request_no,
    )


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
        target = local_path(
            request.args.get("next"), under=pages.url_prefix
        )  # a bad one: 400, before anything
        token = _token()
        throttle, address = throttles().login, request.remote_addr or ""
        wait = throttle.attempt("operator", OPERATORS, address)
        if wait is not None:
            return too_many_attempts(wait, "operator_login.html")
        if hmac.compare_digest(request.form.get("token", "").strip().encode(), token.encode()):
            throttle.succeeded("operator", OPERATORS)
            session["operator"] = _digest(token)
            return redirect(target or url_for("operator.payments"))
        throttle.failed("operator", address)
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
    """Payments to work on: the flagged first, then those owed back; searched by order number,
    out_trade_no or trade_no, filtered by status and attention."""
    args = _listing_args()
    return render_template(
        "operator_payments.html",
        payments=queries.payments(**args, attention_first=True),
        args=args,
        statuses=STATUSES,
        attention=list(queries.ATTENTION),
    )


@pages.get("/payments/<id:payment_id>")
def payment(payment_id):
    """A payment's whole story: what the provider said, its refunds, the order's other payments
    and its fulfilment; the forms to refund it and to clear its flag."""
    view = queries.payment(payment_id)
    if view is None:
        abort(404, description=str(PaymentNotFound(payment_id)))
    trace = queries.trace_of(view["order_sn"])
    return render_template(
        "operator_payment.html",
        p=view,
        trace=trace,
        **queries.fulfilment_of(view["order_sn"], trace),
        refund_key=f"OP-{view['id']}-{len(view['refunds']) + 1}",
    )


@pages.post("/payments/<id:payment_id>/refunds")
def refund_page(payment_id):
    """The refund form: the same service as the API and the CLI; back to the payment with what happened."""
    outcome = refund_through_service(
        payment_id, request.form.get("amount", "").strip(), request.form.get("out_request_no", "").strip()
    )
    if outcome.status == 404:
        abort(404, description=outcome.message)
    category = "done" if outcome.error is None else "pending" if outcome.status == 202 else "refused"
    flash(
        outcome.message if outcome.status != 202 else f"{outcome.message} — submit the same form again",
        category,
    )
    return redirect(url_for("operator.payment", payment_id=payment_id), code=303)


@pages.get("/bills")
def bill_runs():
    """The runs over the providers' daily bills: what each read, repaired and found different."""
    lifecycle = services().lifecycle_settings
    return render_template(
        "operator_bills.html",
        runs=services().bills.runs(BILL_RUNS_SHOWN),
        bills_fetch=lifecycle.bills_fetch,
        bills_fetch_hour=lifecycle.bills_fetch_hour,
    )


@pages.post("/payments/<id:payment_id>/clear-flag")
def clear_flag_page(payment_id):
    """An operator handled what the payment was flagged for."""
    try:
        services().payments.clear_flag(payment_id)
    except PaymentNotFound as error:
        abort(404, description=str(error))
    flash(f"payment #{payment_id}: flag cleared", "done")
    return redirect(url_for("operator.payment", payment_id=payment_id), code=303)
