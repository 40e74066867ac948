"""The status machines: for each thing with a status, the one table of moves it may make.

The stores' ``move`` methods (``ports.store``, ``ports.seckill``) ask the machine before any
store runs the move: a move not in its table raises ``IllegalMove`` and the store is never
called. The stores then only compare-and-set (change the status if it is still ``from``), so
the table says which moves may happen and the store that each happens at most once.

``docs/states.md`` is rendered from these tables (``python -m gmall_payment.core.states >
docs/states.md``); a test fails when it differs.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from .errors import IllegalMove
from .model import LockStatus, OrderStatus, PaymentStatus, RefundStatus
from .seckill import SeckillOrderStatus


@dataclass(frozen=True)
class Move:
    """One move a machine allows, and when it is made (for the docs)."""

    source: IntEnum
    target: IntEnum
    when: str


@dataclass(frozen=True)
class StateMachine:
    """The statuses of one thing (``statuses``, an enum), where it starts, and its moves."""

    name: str
    statuses: type[IntEnum]
    initial: tuple[IntEnum, ...]
    moves: tuple[Move, ...]
    #: What the table leaves out on purpose, for the docs.
    note: str = ""
    pairs: frozenset = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        pairs = frozenset((move.source, move.target) for move in self.moves)
        strays = [s for pair in pairs for s in pair if not isinstance(s, self.statuses)]
        strays += [s for s in self.initial if not isinstance(s, self.statuses)]
        if strays or len(pairs) != len(self.moves):
            raise ValueError(
                f"the {self.name} machine: statuses not {self.statuses.__name__}, or a move twice"
            )
        object.__setattr__(self, "pairs", pairs)

    def allows(self, source, target) -> bool:
        return (source, target) in self.pairs

    def targets(self, source) -> frozenset:
        """Where a thing in ``source`` may go (nowhere: a final status)."""
        return frozenset(to for (of, to) in self.pairs if of == source)

    def check(self, source, target, subject: object = None) -> None:
        """Raise ``IllegalMove`` unless the table holds ``source -> target``; ``subject``
        (an id, an order number) names the thing in the message."""
        if not self.allows(source, target):
            raise IllegalMove(self, source, target, subject)

    def markdown(self) -> str:
        """The machine for the docs: a Mermaid state diagram and the table of its moves."""
        name = self.statuses.__name__
        lines = [f"## {self.name.capitalize()} (`{name}`)", "", "```mermaid", "stateDiagram-v2"]
        lines += [f"    [*] --> {status.name}" for status in self.initial]
        lines += [f"    {move.source.name} --> {move.target.name}" for move in self.moves]
        lines += ["```", "", "| from | to | when |", "| --- | --- | --- |"]
        lines += [f"| {_status(move.source)} | {_status(move.target)} | {move.when} |" for move in self.moves]
        lines += [
            "",
            f"Starts as {' or '.join(_status(s) for s in self.initial)}. No move leaves "
            f"{', '.join(_status(s) for s in self.statuses if not self.targets(s)) or 'no status'}.",
        ]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines) + "\n"


def _status(status: IntEnum) -> str:
    return f"`{status.name}` ({int(status)})"


PAYMENTS = StateMachine(
    "payment",
    PaymentStatus,
    initial=(PaymentStatus.UNPAID,),
    moves=(
        Move(
            PaymentStatus.UNPAID,
            PaymentStatus.PAID,
            "the provider says it took the money (its notification, or our query)",
        ),
        Move(
            PaymentStatus.UNPAID,
            PaymentStatus.CLOSED,
            "the provider closed the trade unpaid (its notification, or our close)",
        ),
        # The money is real, so the payment records it, and the payment service decides what is owed back.
        Move(
            PaymentStatus.CLOSED,
            PaymentStatus.PAID,
            "the provider took the money for a trade we had given up on (closed here because the provider "
            "could not close it, or never opened it): the money is owed back",
        ),
        Move(
            PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED, "a refund of part of the amount succeeded"
        ),
        Move(PaymentStatus.PAID, PaymentStatus.REFUNDED, "refunds that succeeded cover the whole amount"),
        Move(
            PaymentStatus.PARTIALLY_REFUNDED,
            PaymentStatus.REFUNDED,
            "refunds that succeeded cover the whole amount",
        ),
    ),
)

ORDERS = StateMachine(
    "order",
    OrderStatus,
    initial=(OrderStatus.AWAITING_PAYMENT,),
    moves=(
        Move(
            OrderStatus.AWAITING_PAYMENT,
            OrderStatus.AWAITING_SHIPMENT,
            "its payment succeeded (`FulfilmentService.mark_order_paid`)",
        ),
        Move(
            OrderStatus.AWAITING_PAYMENT,
            OrderStatus.CLOSED,
            "closed unpaid (`OrderClosing.close`: the flash sale's expiry, the order timeout, an operator)",
        ),
    ),
    note="The order service makes the order's other moves (shipped, done, invalid); this service never does.",
)

STOCK_LOCKS = StateMachine(
    "stock lock",
    LockStatus,
    initial=(LockStatus.LOCKED,),
    moves=(
        Move(
            LockStatus.LOCKED,
            LockStatus.DEDUCTED,
            "the order was paid: its units ship (`FulfilmentService.deduct_stock`)",
        ),
        Move(
            LockStatus.LOCKED,
            LockStatus.RELEASED,
            "the order closed unpaid: its units are free again (`OrderClosing.close`)",
        ),
    ),
)

REFUNDS = StateMachine(
    "refund",
    RefundStatus,
    initial=(RefundStatus.PENDING,),
    moves=(
        Move(
            RefundStatus.PENDING,
            RefundStatus.SUCCEEDED,
            "the provider refunded (its answer, or its notification)",
        ),
        Move(
            RefundStatus.PENDING,
            RefundStatus.FAILED,
            "the provider refused: the amount reserved is free again",
        ),
        Move(RefundStatus.FAILED, RefundStatus.PENDING, "asked again with the same `out_request_no`"),
    ),
    note="A pending refund whose answer is unknown keeps what the provider said (`RefundStore.note`) and "
    "stays pending: that is no move.",
)

RESERVATIONS = StateMachine(
    "flash-sale reservation",
    SeckillOrderStatus,
    initial=(SeckillOrderStatus.CREATED, SeckillOrderStatus.ABANDONED),
    moves=(
        Move(
            SeckillOrderStatus.CREATED,
            SeckillOrderStatus.CLOSED,
            "its order was closed or made invalid: the unit goes back, the member may buy again",
        ),
    ),
    note="A reservation (`sms_seckill_order`) starts as `CREATED` when its order is made, or as `ABANDONED` "
    "when none can be; it leaves `CREATED` only once its order is closed or invalid.",
)

#: Every machine, in the order the docs show them.
MACHINES = (ORDERS, PAYMENTS, STOCK_LOCKS, REFUNDS, RESERVATIONS)


def document(machines: Iterable[StateMachine] = MACHINES) -> str:
    """docs/states.md: every machine, as its diagram and its table."""
    head = (
        "# Status machines\n\n"
        "Generated from `core/states.py` by `python -m gmall_payment.core.states > docs/states.md`: "
        "edit the tables there, not this page (a test fails when they differ).\n\n"
        "Each thing with a status may make only the moves of its table; a move not in it is refused "
        "(`IllegalMove`) before any store is asked, and the stores make each move a compare-and-set, "
        "so it happens at most once.\n"
    )
    return "\n".join([head, *(machine.markdown() for machine in machines)])


if __name__ == "__main__":  # pragma: no cover - a tool
    print(document(), end="")
