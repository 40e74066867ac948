"""The flash sale's ports: the reservation gate (Redis) and the sale and order stores (SQL).

The created-order signal is ``ports.messaging.Latch``.
"""

import abc
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from ..core import states
from ..core.seckill import (
    Click,
    Creation,
    Reservation,
    Sale,
    SeckillOrder,
    SeckillOrderRecord,
    SeckillOrderStatus,
)


class ReservationGate(abc.ABC):
    """The units of each SKU on sale, who holds them, and the reservations waiting for orders.

    Every call is atomic. A SKU the gate does not hold (never loaded, unloaded, or lost with
    its server) is not on sale, and only ``preheat`` loads one: nothing refills it.
    """

    @abc.abstractmethod
    def preheat(self, sale: Sale, units: int, buyers: Mapping[int, str] | None = None) -> bool:
        """Load ``units`` of ``sale`` at ``sale.generation``, its ``buyers`` (member -> order
        number of the unit they hold) recorded, unless its SKU holds it at that generation
        already; True if this call did. A SKU holding the sale at another generation is
        loaded afresh: what it held (units, buyers, waiting reservations) is dropped.

        Raises ``InvalidSale`` if the SKU holds another sale.
        """

    @abc.abstractmethod
    def generation(self, sku_id: int, sale_id: int) -> int | None:
        """The generation at which the gate holds the SKU's sale ``sale_id``; None when it
        holds no sale of the SKU (never loaded, unloaded, or lost), or another."""

    @abc.abstractmethod
    def unload(self, sku_id: int, sale_id: int) -> bool:
        """Forget the SKU's sale if it is ``sale_id`` and no reservation waits for its order."""

    def open_connections(self, count: int) -> None:
        """Connect now what ``count`` clicks at once need, so that a burst connects nothing
        (nothing to do for a gate in process)."""
        return None

    @abc.abstractmethod
    def reserve(self, sku_id: int, member_id: int, order_sn: str, now: datetime, ip: str) -> Click:
        """Count the click against the gate's ``ClickLimits`` (for the member and for ``ip``);
        then, if no limit is breached, the sale is open at ``now``, the member holds no unit
        and units are left: take one, record the member under ``order_sn``, and queue the
        reservation for the order creator, all or nothing. The same click sent again (the
        member's unit is ``order_sn``'s already) is told ``RESERVED`` and counts nothing."""

    @abc.abstractmethod
    def give_back(self, sku_id: int, member_id: int, order_sn: str, unit: bool = True) -> bool:
        """Return the unit and free the member, if the member's unit is still the one of
        ``order_sn``; True if this call did, so a unit comes back once per order. ``unit``
        False frees the member only: the database had no unit for the reservation."""

    @abc.abstractmethod
    def held(self, sku_id: int, member_id: int) -> str | None:
        """The order number of the unit the member holds in the SKU's sale, or None."""

    @abc.abstractmethod
    def take(self, sku_id: int, consumer: str, count: int, claim_after: float) -> list[Reservation]:
        """Hand ``consumer`` up to ``count`` reservations: first those handed out more than
        ``claim_after`` seconds ago and never acknowledged (their consumer died), then new ones."""

    @abc.abstractmethod
    def ack(self, sku_id: int, reservations: Sequence[Reservation]) -> None:
        """Drop reservations whose order was made or abandoned."""

    @abc.abstractmethod
    def units_left(self, sku_id: int) -> int | None:
        """Units left, or None when the SKU is not on sale."""


class SaleStore(abc.ABC):
    @abc.abstractmethod
    def add(self, sale: Sale) -> Sale:
        """Store a new sale; return it with its id. Raises ``InvalidSale`` for a SKU the
        stock (wms_ware_sku) does not know: its orders could not lock a unit."""

    @abc.abstractmethod
    def get(self, sale_id: int) -> Sale | None: ...

    @abc.abstractmethod
    def overlapping(self, start: datetime, end: datetime) -> list[Sale]:
        """Sales open at some time in ``[start, end)``, by start."""


class SeckillOrders(abc.ABC):
    """Orders made from reservations; every call is one transaction of its own.

    Each reservation leaves one row behind, keyed by its order number: its order was
    created, later closed, or it was abandoned. A row whose order holds its unit is unique
    per member and sale: the database's last guard against a member buying twice.
    """

    @abc.abstractmethod
    def create(self, orders: Sequence[SeckillOrder]) -> dict[str, Creation]:
        """Make each order (status 0, its items, its stock locks), or say why not, by order_sn.

        Each order takes a unit from its sale's count of units sold, in the same transaction:
        one of a reservation taken from another gate generation than the sale's, or beyond the
        sale's units, is ``REFUSED`` (the first of a batch that fit are made). All or nothing:
        raises, having changed nothing, if any order cannot be made.
        """

    @abc.abstractmethod
    def abandon(self, reservation: Reservation, returned_at: datetime | None = None) -> bool:
        """Record that no order will be made for this reservation (its unit is to be given
        back, unless ``returned_at`` says there is none to give); False if it was settled already."""

    @abc.abstractmethod
    def load(self, sale: Sale, into: Callable[[Sale, int, dict[int, str]], bool]) -> bool:
        """Load the sale into the gate as a new generation: in one transaction that holds the
        sale, if its generation is still ``sale.generation``, record the next one and call
        ``into(sale at the new generation, units left, holders)`` (units less those its orders
        hold; member -> order number of each order holding a unit); its answer, committed
        only if it did not raise. False, doing nothing, if another load came first. From the
        commit on, an order of a reservation of an older generation is refused (``create``),
        so what was loaded stays exact."""

    @abc.abstractmethod
    def get(self, order_sn: str) -> SeckillOrderRecord | None:
        """What became of this reservation, or None if the order creator has not settled it."""

    @abc.abstractmethod
    def held(self, sale_id: int) -> int:
        """Units of the sale that its orders hold: created, and their order not closed."""

    @abc.abstractmethod
    def due(self, now: datetime, limit: int) -> list[str]:
        """Orders still awaiting payment past their time, oldest first."""

    def release(self, order_sn: str) -> Reservation | None:
        """Record that the reservation's order was closed, so its unit is to be given back
        and its member may hold another order of the sale: only if its order is closed and
        this was not recorded before; its reservation if this call recorded it."""
        return self.move(order_sn, SeckillOrderStatus.CREATED, SeckillOrderStatus.CLOSED)

    def move(
        self, order_sn: str, from_status: SeckillOrderStatus, to_status: SeckillOrderStatus
    ) -> Reservation | None:
        """Change the reservation's status only if it is still ``from_status`` and its order is
        closed or invalid (``DEAD_ORDER_STATUSES``: the order no longer holds the unit); its
        reservation if this call did. ``IllegalMove`` for a move that ``states.RESERVATIONS``
        does not hold."""
        states.RESERVATIONS.check(from_status, to_status, order_sn)
        return self._move(order_sn, from_status, to_status)

    @abc.abstractmethod
    def _move(
        self, order_sn: str, from_status: SeckillOrderStatus, to_status: SeckillOrderStatus
    ) -> Reservation | None:
        """``move``'s compare-and-set, the move already checked; a reservation holds its member's
        place in the sale (unique per member and sale) while, and only while, it is ``CREATED``."""

    @abc.abstractmethod
    def unreturned(self, limit: int) -> list[Reservation]:
        """Closed or abandoned reservations whose unit is not known to be given back."""

    @abc.abstractmethod
    def mark_returned(self, order_sn: str, at: datetime) -> None: ...


class ExpiryScheduler(abc.ABC):
    """Runs ``SeckillService.expire`` later (a delayed message); the sweep catches what it loses."""

    @abc.abstractmethod
    def schedule(self, order_sns: Sequence[str], at: datetime) -> None:
        """Expire these orders at ``at`` or soon after; raise if the schedule refused them."""
