-- redis_exporter --script: when the Flink job last wrote the live metrics (libs/coffee_live/layout.py).
-- Exported as redis_script_values{key="coffee_live_updated_at_ms"}: updated_at (ms since the epoch) of
-- coffee:live:_all:{current_day}:summary, the all-stores summary the dashboard shows. Nothing is
-- returned (no series) until the job has written once. Read-only; two O(1) lookups per scrape.
local day = redis.call('GET', 'coffee:live:_all:current_day')
if not day then
  return {}
end
local updated = redis.call('HGET', 'coffee:live:_all:' .. day .. ':summary', 'updated_at')
if not updated then
  return {}
end
return {'coffee_live_updated_at_ms', updated}
