"""The one writer of :class:`Flush` batches into the live metrics' Redis keys (``coffee_live.layout``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import redis

from coffee_job.live_metrics import Flush
from coffee_live.layout import (
    ALL_STORES,
    PRODUCT_NAMES,
    RECENT_ORDERS,
    STORES,
    UPDATES_CHANNEL,
    current_day_key,
    day_key,
)

# One flush batch in one round trip and one atomic step: the script does the commands that
# redis-py would otherwise pack one by one in the job's Python (that packing was most of the live
# metrics' cost at 1,000 orders/s). Values travel as strings, so Lua's doubles never round them.
# The keys are built in the script, so it is for a standalone Redis (not Redis Cluster).
_WRITE_LUA = """
local batch = cjson.decode(ARGV[1])
local now = ARGV[2]
local function chunked(command, key, flat)
  for i = 1, #flat, 1000 do
    redis.call(command, key, unpack(flat, i, math.min(i + 999, #flat)))
  end
end
for _, f in ipairs(batch.flushes) do
  local k = f.prefix
  redis.call('HSET', k .. 'summary', 'orders', f.summary[1], 'revenue_cents', f.summary[2],
             'quantity', f.summary[3], 'last_order_at', f.summary[4], 'updated_at', now)
  chunked('HSET', k .. 'products', f.quantities)
  chunked('HSET', k .. 'product_revenue', f.revenues)
  chunked('HSET', k .. 'origins', f.origins)
  chunked('HSET', k .. 'per_minute', f.minutes)
  chunked('HDEL', k .. 'per_minute', f.stale)
  if #f.recent > 0 then
    chunked('ZADD', k .. 'recent', f.recent)
    redis.call('ZREMRANGEBYRANK', k .. 'recent', 0, -(tonumber(batch.keep_recent) + 1))
  end
  for _, part in ipairs(batch.parts) do
    redis.call('EXPIREAT', k .. part, f.expire_at)
  end
  redis.call('SET', f.current_day_key, f.day, 'EXAT', f.expire_at)
  if f.store ~= '' then
    redis.call('SADD', batch.stores_key, f.store)
  end
  redis.call('PUBLISH', batch.channel, f.notice)
end
chunked('HSET', batch.names_key, batch.names)
return #batch.flushes
"""

_PARTS = ["summary", "products", "product_revenue", "origins", "per_minute", "recent"]


def _flat(pairs: Iterable[tuple[object, object]]) -> list[str]:
    return [str(x) for pair in pairs for x in pair]


def batch_json(flushes: Sequence[Flush], now_ms: int) -> str:
    """The script's argument: every flush's absolute values, as strings."""
    names: dict[str, str] = {}
    entries = []
    for f in flushes:
        names.update(f.names)
        s = f.summary
        entries.append({
            "prefix": day_key(f.store, f.day, ""),
            "store": "" if f.store == ALL_STORES else f.store,
            "day": f.day,
            "expire_at": str(f.expire_at),
            "current_day_key": current_day_key(f.store),
            "summary": [str(s.orders), str(s.revenue_cents), str(s.quantity), str(s.last_order_ms)],
            "quantities": _flat((sku, q) for sku, (q, _) in f.products.items()),
            "revenues": _flat((sku, c) for sku, (_, c) in f.products.items()),
            "origins": _flat(f.origins.items()),
            "minutes": _flat(f.minutes.items()),
            "stale": [str(m) for m in f.stale_minutes],
            "recent": _flat(f.recent),
            "notice": json.dumps({"store": f.store, "day": f.day, "orders": s.orders,
                                  "revenue_cents": s.revenue_cents, "updated_at": now_ms}, separators=(",", ":")),
        })
    return json.dumps({"flushes": entries, "names": _flat(names.items()), "names_key": PRODUCT_NAMES,
                       "stores_key": STORES, "channel": UPDATES_CHANNEL, "parts": _PARTS,
                       "keep_recent": str(RECENT_ORDERS)}, separators=(",", ":"))


class Writer:
    """Writes flushes with the script (EVALSHA, loading it again after a Redis restart)."""

    def __init__(self, client: redis.Redis) -> None:
        self.script = client.register_script(_WRITE_LUA)

    def __call__(self, flushes: Sequence[Flush], now_ms: int) -> None:
        if flushes:
            self.script(keys=[], args=[batch_json(flushes, now_ms), now_ms])
