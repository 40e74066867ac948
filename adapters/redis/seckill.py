"""The reservation gate on Redis: one Lua script per call, one round trip per click.

Keys of a SKU share the hash tag ``{seckill:<sku_id>}``, so each script touches one slot
and runs on Redis Cluster too (``<prefix>`` goes before the tag and holds no braces)::

    <prefix>{seckill:<sku_id>}:sale     hash    id, start, end (µs), units left, gen
    <prefix>{seckill:<sku_id>}:buyers   hash    member_id -> order_sn of the unit they hold
    <prefix>{seckill:<sku_id>}:pending  stream  sn, member, sale, at, gen; consumer group "creators"
    <prefix>{seckill:<sku_id>}:clicks:member:<member_id>:<seconds>   counter of a rate limit
    <prefix>{seckill:<sku_id>}:clicks:ip:<address>:<seconds>         counter of a rate limit

Every call is one script, so every multi-key step is atomic, also on a cluster. The click's
rate limits are counted by the reservation script itself, so a click stays one round trip;
sharing the sale's hash tag, they count a member's and an address's clicks per sale.

The hand-off is a stream with a consumer group rather than a list: each reservation handed
to an order creator stays in the group's pending entries until acknowledged, with its own
idle time and delivery count, so a crashed creator's reservations go to another creator
(``XPENDING ... IDLE`` + ``XCLAIM``) and one that can never become an order is given up
after a few deliveries. A list would need a processing list per creator and a way to tell
which creator died.
"""

import time
from datetime import datetime, timedelta

from ...core.seckill import UNLIMITED, Click, ClickLimits, InvalidSale, Outcome, Reservation
from ...ports.seckill import ReservationGate
from . import UNANSWERED
from .hot_script import HotScript, hot_script

_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)

#: KEYS sale, buyers, pending; ARGV id, start, end, units, generation, then member and order_sn
#: of each buyer -> {1 if loaded now else 0, id of the SKU's sale}. Loaded afresh unless the SKU
#: holds the sale at this generation (or holds another sale); buyers set a thousand at a time.
PREHEAT = """
local loaded = redis.call('HMGET', KEYS[1], 'id', 'gen')
if loaded[1] and (loaded[1] ~= ARGV[1] or (loaded[2] or '0') == ARGV[5]) then return {0, loaded[1]} end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'start', ARGV[2], 'end', ARGV[3], 'units', ARGV[4], 'gen', ARGV[5])
for i = 6, #ARGV, 2000 do
  redis.call('HSET', KEYS[2], unpack(ARGV, i, math.min(i + 1999, #ARGV)))
end
redis.call('XGROUP', 'CREATE', KEYS[3], 'creators', '0', 'MKSTREAM')
return {1, ARGV[1]}
"""

#: KEYS sale, buyers, pending; ARGV sale id -> 1 if unloaded
UNLOAD = """
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] or redis.call('XLEN', KEYS[3]) > 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
"""

#: KEYS sale, buyers, pending, counter...; ARGV member, order_sn, now (µs), deadline (µs since
#: the epoch, Redis's clock), then amount and window (ms) per counter -> {outcome, order_sn or
#: ms to wait}. The same click sent again (its order number the member's unit already) is told
#: it reserved, and counts nothing: the answer of a click sent twice is the first one's. A click
#: that reaches the script past its deadline takes nothing: its shopper was told 503 already. Every click counts (fixed windows from their first
#: click, as the limits library's); past a limit it stops there. Then
#: every check comes before the hand-off (XADD), the first write that matters: a failing
#: command leaves no unit taken.
RESERVE = """
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then return {'reserved', ARGV[2]} end
local clock = redis.call('TIME')
if tonumber(clock[1]) * 1000000 + tonumber(clock[2]) > tonumber(ARGV[4]) then return {'unavailable'} end
local wait = 0
for i = 4, #KEYS do
  local clicks = redis.call('INCR', KEYS[i])
  if clicks == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i - 2]) end
  if clicks > tonumber(ARGV[2 * i - 3]) then wait = math.max(wait, redis.call('PTTL', KEYS[i])) end
end
if wait > 0 then return {'rate_limited', wait} end
local sale = redis.call('HMGET', KEYS[1], 'id', 'start', 'end', 'units', 'gen')
if not sale[1] then return {'not_on_sale'} end
local now = tonumber(ARGV[3])
if now < tonumber(sale[2]) then return {'not_started'} end
if now >= tonumber(sale[3]) then return {'ended'} end
local held = redis.call('HGET', KEYS[2], ARGV[1])
if held then return {'already_bought', held} end
if tonumber(sale[4]) <= 0 then return {'sold_out'} end
redis.call('XADD', KEYS[3], '*', 'sn', ARGV[2], 'member', ARGV[1], 'sale', sale[1], 'at', ARGV[3], 'gen', sale[5] or '0')
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'units', -1)
return {'reserved', ARGV[2]}
"""

#: KEYS sale, buyers; ARGV member, order_sn, 1 to return the unit (0: free the member only)
#: -> 1 if given back. Only while the member's unit is this order's (so once per order), and
#: never into a sale the gate no longer holds.
GIVE_BACK = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'units', 1) end
return 1
"""

#: KEYS pending; ARGV consumer, count, claim_after (ms) -> {{id, {field, value, ...}, deliveries}, ...}
TAKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local taken = {}
for _, stale in ipairs(redis.call('XPENDING', KEYS[1], 'creators', 'IDLE', ARGV[3], '-', '+', ARGV[2])) do
  local entry = redis.call('XCLAIM', KEYS[1], 'creators', ARGV[1], ARGV[3], stale[1])[1]
  if entry then taken[#taken + 1] = {entry[1], entry[2], stale[4] + 1} end
end
local left = tonumber(ARGV[2]) - #taken
if left > 0 then
  local new = redis.call('XREADGROUP', 'GROUP', 'creators', ARGV[1], 'COUNT', left, 'STREAMS', KEYS[1], '>')
  for _, entry in ipairs(new and new[1][2] or {}) do taken[#taken + 1] = {entry[1], entry[2], 1} end
end
return taken
"""


#: KEYS pending; ARGV receipts. Acknowledged and deleted together, or the stream would keep
#: entries nobody will take (and ``unload`` would refuse forever).
ACK = """
redis.call('XACK', KEYS[1], 'creators', unpack(ARGV))
return redis.call('XDEL', KEYS[1], unpack(ARGV))
"""


def _micros(moment: datetime) -> int:
    """Exact microseconds of a naive datetime, for comparisons inside the scripts."""
    return (moment - _EPOCH) // _MICROSECOND


def _moment(micros: str) -> datetime:
    return _EPOCH + int(micros) * _MICROSECOND


class RedisReservationGate(ReservationGate):
    """``client`` must answer ``str`` (``adapters.redis.connect``), its socket timeout
    ``timeout``; ``prefix`` namespaces the keys; ``limits``: what each click counts against.

    A click the gate does not answer within ``timeout`` is ``UNAVAILABLE`` (503 and Retry-After):
    its script carries a deadline half that long after it was sent, past which it takes nothing
    (a stopped Redis runs what it was sent once it resumes), so the shopper's answer stays true.
    The other half is the reply's way back and the clocks' disagreement between the web host
    and Redis's (kept by NTP within milliseconds)."""

    def __init__(self, client, prefix: str = "", limits: ClickLimits = UNLIMITED, timeout: float = 0.5):
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not hold braces: they would replace the SKU's hash tag")
        self.client = client
        self.prefix = prefix
        self.limits = limits
        self._limit_args = [
            str(number)
            for limit in limits.member + limits.ip
            for number in (limit.amount, limit.seconds * 1000)
        ]
        self._preheat, self._unload, self._give_back, self._take, self._ack = (
            client.register_script(script) for script in (PREHEAT, UNLOAD, GIVE_BACK, TAKE, ACK)
        )
        self._reserve = hot_script(client, RESERVE)
        self._deadline = timeout / 2

    def open_connections(self, count):
        """Open ``count`` connections for the clicks before the first (a cluster's client opens its own)."""
        if isinstance(self._reserve, HotScript):
            self._reserve.open(count)

    def keys(self, sku_id: int) -> tuple[str, str, str]:
        """The sale, buyers and pending keys of a SKU."""
        tag = self._tag(sku_id)
        return f"{tag}:sale", f"{tag}:buyers", f"{tag}:pending"

    def _tag(self, sku_id: int) -> str:
        return f"{self.prefix}{{seckill:{sku_id}}}"

    def preheat(self, sale, units, buyers=None):
        buyer_args = [field for member, order_sn in (buyers or {}).items() for field in (member, order_sn)]
        loaded, holder = self._preheat(
            keys=self.keys(sale.sku_id),
            args=[sale.id, _micros(sale.start), _micros(sale.end), units, sale.generation, *buyer_args],
        )
        if holder != str(sale.id):
            raise InvalidSale(f"SKU {sale.sku_id} holds sale {holder}: unload it first")
        return loaded == 1

    def unload(self, sku_id, sale_id):
        return self._unload(keys=self.keys(sku_id), args=[sale_id]) == 1

    def reserve(self, sku_id, member_id, order_sn, now, ip):
        tag = f"{self._tag(sku_id)}:clicks"
        counters = [f"{tag}:member:{member_id}:{limit.seconds}" for limit in self.limits.member]
        counters += [f"{tag}:ip:{ip}:{limit.seconds}" for limit in self.limits.ip]
        deadline = int((time.time() + self._deadline) * 1_000_000)
        try:
            outcome, *answer = self._reserve(
                keys=[*self.keys(sku_id), *counters],
                args=[member_id, order_sn, _micros(now), deadline, *self._limit_args],
            )
        except UNANSWERED:  # sent once more at most, and past its deadline takes nothing
            return Click.unavailable()
        if outcome == Outcome.UNAVAILABLE.value:
            return Click.unavailable()
        if outcome == Outcome.RATE_LIMITED.value:
            return Click.rate_limited(int(answer[0]) / 1000)
        return Click(Outcome(outcome), *answer)

    def generation(self, sku_id, sale_id):
        loaded, generation = self.client.hmget(self.keys(sku_id)[0], "id", "gen")
        return int(generation or 0) if loaded == str(sale_id) else None

    def give_back(self, sku_id, member_id, order_sn, unit=True):
        sale, buyers, _ = self.keys(sku_id)
        return self._give_back(keys=[sale, buyers], args=[member_id, order_sn, int(unit)]) == 1

    def held(self, sku_id, member_id):
        return self.client.hget(self.keys(sku_id)[1], str(member_id))

    def take(self, sku_id, consumer, count, claim_after):
        pending = self.keys(sku_id)[2]
        taken = self._take(keys=[pending], args=[consumer, count, int(claim_after * 1000)])
        return [self._reservation(sku_id, *entry) for entry in taken]

    def ack(self, sku_id, reservations):
        if not reservations:
            return
        self._ack(keys=[self.keys(sku_id)[2]], args=[reservation.receipt for reservation in reservations])

    def units_left(self, sku_id):
        units = self.client.hget(self.keys(sku_id)[0], "units")
        return None if units is None else int(units)

    @staticmethod
    def _reservation(sku_id, receipt, flat_fields, deliveries) -> Reservation:
        fields = dict(zip(flat_fields[::2], flat_fields[1::2], strict=True))
        return Reservation(
            order_sn=fields["sn"],
            member_id=int(fields["member"]),
            sku_id=sku_id,
            sale_id=int(fields["sale"]),
            reserved_at=_moment(fields["at"]),
            receipt=receipt,
            deliveries=int(deliveries),
            generation=int(fields.get("gen", 0)),
        )
