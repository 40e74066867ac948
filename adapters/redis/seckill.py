"""The reservation gate on Redis: one Lua script per call, one round trip per click.

Keys of a SKU share the hash tag ``{seckill:<sku_id>}``, so each script touches one slot
and runs on Redis Cluster too (``<prefix>`` goes before the tag and holds no braces)::

    <prefix>{seckill:<sku_id>}:sale     hash    id, start, end (µs), units left
    <prefix>{seckill:<sku_id>}:buyers   hash    member_id -> order_sn of the unit they hold
    <prefix>{seckill:<sku_id>}:pending  stream  sn, member, sale, at; consumer group "creators"
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

from datetime import datetime, timedelta

from ...core.seckill import UNLIMITED, Click, ClickLimits, InvalidSale, Outcome, Reservation
from ...ports.seckill import ReservationGate
from .hot_script import HotScript

_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)

#: KEYS sale, pending; ARGV id, start, end, units -> {1 if loaded now else 0, id of the SKU's sale}
PREHEAT = """
local loaded = redis.call('HGET', KEYS[1], 'id')
if loaded then return {0, loaded} end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'start', ARGV[2], 'end', ARGV[3], 'units', ARGV[4])
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[2], 'creators', '0', 'MKSTREAM')
end
return {1, ARGV[1]}
"""

#: KEYS sale, buyers, pending; ARGV sale id -> 1 if unloaded
UNLOAD = """
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] or redis.call('XLEN', KEYS[3]) > 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
"""

#: KEYS sale, buyers, pending, counter...; ARGV member, order_sn, now (µs), then amount and
#: window (ms) per counter -> {outcome, order_sn or ms to wait}. Every click counts (fixed
#: windows from their first click, as the limits library's); past a limit it stops there. Then
#: every check comes before the hand-off (XADD), the first write that matters: a failing
#: command leaves no unit taken.
RESERVE = """
local wait = 0
for i = 4, #KEYS do
  local clicks = redis.call('INCR', KEYS[i])
  if clicks == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i - 3]) end
  if clicks > tonumber(ARGV[2 * i - 4]) then wait = math.max(wait, redis.call('PTTL', KEYS[i])) end
end
if wait > 0 then return {'rate_limited', wait} end
local sale = redis.call('HMGET', KEYS[1], 'id', 'start', 'end', 'units')
if not sale[1] then return {'not_on_sale'} end
local now = tonumber(ARGV[3])
if now < tonumber(sale[2]) then return {'not_started'} end
if now >= tonumber(sale[3]) then return {'ended'} end
local held = redis.call('HGET', KEYS[2], ARGV[1])
if held then return {'already_bought', held} end
if tonumber(sale[4]) <= 0 then return {'sold_out'} end
redis.call('XADD', KEYS[3], '*', 'sn', ARGV[2], 'member', ARGV[1], 'sale', sale[1], 'at', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'units', -1)
return {'reserved', ARGV[2]}
"""

#: KEYS sale, buyers; ARGV member, order_sn -> 1 if given back. Only while the member's unit
#: is this order's (so once per order), and never into a sale the gate no longer holds.
GIVE_BACK = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'units', 1) end
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
    """``client`` must answer ``str`` (``adapters.redis.connect``); ``prefix`` namespaces the
    keys; ``limits``: what each click counts against."""

    def __init__(self, client, prefix: str = "", limits: ClickLimits = UNLIMITED):
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not hold braces: they would replace the SKU's hash tag")
        self.client = client
        self.prefix = prefix
        self.limits = limits
        self._limit_args = [str(number) for limit in limits.member + limits.ip
                            for number in (limit.amount, limit.seconds * 1000)]
        self._preheat, self._unload, self._give_back, self._take, self._ack = (
            client.register_script(script) for script in (PREHEAT, UNLOAD, GIVE_BACK, TAKE, ACK)
        )
        self._reserve = HotScript(client, RESERVE)

    def keys(self, sku_id: int) -> tuple[str, str, str]:
        """The sale, buyers and pending keys of a SKU."""
        tag = self._tag(sku_id)
        return f"{tag}:sale", f"{tag}:buyers", f"{tag}:pending"

    def _tag(self, sku_id: int) -> str:
        return f"{self.prefix}{{seckill:{sku_id}}}"

    def preheat(self, sale, units):
        sale_key, _, pending = self.keys(sale.sku_id)
        loaded, holder = self._preheat(
            keys=[sale_key, pending], args=[sale.id, _micros(sale.start), _micros(sale.end), units]
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
        outcome, *answer = self._reserve(keys=[*self.keys(sku_id), *counters],
                                         args=[member_id, order_sn, _micros(now), *self._limit_args])
        if outcome == Outcome.RATE_LIMITED.value:
            return Click.rate_limited(int(answer[0]) / 1000)
        return Click(Outcome(outcome), *answer)

    def give_back(self, sku_id, member_id, order_sn):
        sale, buyers, _ = self.keys(sku_id)
        return self._give_back(keys=[sale, buyers], args=[member_id, order_sn]) == 1

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
        )
