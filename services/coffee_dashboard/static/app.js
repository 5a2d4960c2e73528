// coffee-rt live dashboard. Everything arrives on one Server-Sent Events stream (/api/v1/stream):
// hello, summary, status, ops, history. The page never polls; a local one-second timer only
// re-renders "updated N s ago" from the last status and notices a silent stream.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const ALL = "_all";
  let source = null;
  let store = new URLSearchParams(location.search).get("store") || ALL;
  let heartbeatS = 1;
  let lastEventAt = 0;          // Date.now() of the last event of any kind
  let clockOffset = 0;          // server now - browser now, from status events
  let status = null;            // last status event
  let lastUpdateMs = null;      // newest job write we know of (server clock)
  let currentSummary = null;
  let charts = {};
  let seenOrders = new Set();

  // -- formatting ------------------------------------------------------------------------------
  const intFmt = new Intl.NumberFormat("en-GB");
  const moneyFmts = {};
  function money(cents, currency) {
    const code = currency || "EUR";
    if (!moneyFmts[code]) moneyFmts[code] = new Intl.NumberFormat("en-GB", { style: "currency", currency: code });
    return moneyFmts[code].format(cents / 100);
  }
  function clock(iso, zone) {
    try {
      return new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit" })
        .format(new Date(iso));
    } catch (e) { return iso; }
  }
  function age(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 90) return m + " min";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
    }
    for (const c of children) node.append(c);
    return node;
  }
  function setValue(id, raw, text) {
    const node = $(id);
    node.dataset.value = String(raw);
    node.textContent = text;
  }

  // -- rendering ---------------------------------------------------------------------------------
  function renderSummary(s) {
    currentSummary = s;
    setValue("kpi-orders", s.orders, intFmt.format(s.orders));
    setValue("kpi-revenue", s.revenue_cents, money(s.revenue_cents, s.currency));
    setValue("kpi-avg", s.average_order_cents, money(s.average_order_cents, s.currency));
    setValue("kpi-items", s.quantity, intFmt.format(s.quantity));
    const last = s.last_order_at ? `last order ${clock(s.last_order_at, s.timezone)}` : "no orders yet today";
    $("day-note").textContent = `${s.day} (${s.timezone}) · ${last}`;
    if (s.updated_at_ms) lastUpdateMs = Math.max(lastUpdateMs || 0, s.updated_at_ms);
    renderBars("top-products", s.top_products.map((p) => ({
      key: p.sku, name: p.name, value: p.quantity, extra: money(p.revenue_cents, s.currency) })));
    renderBars("origins", s.origins.map((o) => ({
      key: o.origin, name: o.origin, value: o.quantity, extra: Math.round(o.share * 100) + " %" })));
    renderRecent(s);
    renderMinutes(s.per_minute, s.timezone);
    renderFreshness();
  }

  function renderBars(id, rows) {
    const body = $(id).tBodies[0];
    body.replaceChildren();
    const max = Math.max(1, ...rows.map((r) => r.value));
    if (!rows.length) body.append(el("tr", {}, el("td", { class: "hint" }, "nothing sold yet today")));
    for (const r of rows) {
      const bar = el("div", { class: "bar" });
      bar.style.width = (100 * r.value / max).toFixed(1) + "%";
      body.append(el("tr", { "data-key": r.key },
        el("td", { class: "name" }, r.name), el("td", {}, bar),
        el("td", { class: "num qty" }, intFmt.format(r.value)), el("td", { class: "num" }, r.extra)));
    }
  }

  function renderRecent(s) {
    const list = $("recent");
    const fresh = seenOrders.size > 0;
    list.replaceChildren();
    for (const o of s.recent) {
      const items = (o.items || []).map(([name, qty]) => (qty > 1 ? `${qty}× ${name}` : name)).join(", ");
      const li = el("li", { "data-id": o.message_id },
        el("span", { class: "t" }, clock(o.placed_at, s.timezone)), el("span", { class: "store" }, o.store_id),
        el("span", { class: "items" }, items), el("span", { class: "amt" }, money(o.total_cents, s.currency)));
      if (fresh && !seenOrders.has(o.message_id)) li.classList.add("new");
      list.append(li);
    }
    seenOrders = new Set(s.recent.map((o) => o.message_id));
    if (!s.recent.length) list.append(el("li", { class: "hint" }, "no orders yet today"));
  }

  function chartWidth(id) { return Math.max(260, $(id).clientWidth || 600); }

  function renderMinutes(perMinute, zone) {
    const xs = perMinute.map(([ms]) => ms / 1000), ys = perMinute.map(([, n]) => n);
    if (!charts.minutes) {
      charts.minutes = new uPlot({
        width: chartWidth("chart-minutes"), height: 180, legend: { show: false },
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), zone),  // the store's clock, not the browser's
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(3, max)] } },
        series: [{}, { label: "orders", stroke: "#8a4b2a", fill: "rgba(138,75,42,.35)",
          paths: uPlot.paths.bars({ size: [0.8, 20] }) }],
        axes: [{}, { size: 40, values: (u, v) => v.map((n) => (Number.isInteger(n) ? n : "")) }],
      }, [xs, ys], $("chart-minutes"));
    } else {
      charts.minutes.setData([xs, ys]);
    }
  }

  function renderHistory(h) {
    const err = $("hourly-error");
    if (h.error) { err.hidden = false; err.textContent = "History unavailable: " + h.error; return; }
    err.hidden = true;
    $("hourly-hint").textContent = `${h.day} vs ${h.compare_day} (same weekday last week), ${h.timezone}`;
    const currency = currentSummary ? currentSummary.currency : "EUR";
    const nowHour = Number(new Intl.DateTimeFormat("en-GB", { timeZone: h.timezone, hour: "2-digit", hourCycle: "h23" })
      .format(new Date()));
    const todayLocal = new Intl.DateTimeFormat("en-CA", { timeZone: h.timezone }).format(new Date());
    const xs = h.hours.map((r) => r.hour);
    const today = h.hours.map((r) => (h.day === todayLocal && r.hour > nowHour ? null : r.revenue_cents / 100));
    const before = h.hours.map((r) => r.compare_revenue_cents / 100);
    const data = [xs, today, before];
    if (!charts.hourly) {
      charts.hourly = new uPlot({
        width: chartWidth("chart-hourly"), height: 200,
        scales: { x: { time: false, range: [-0.5, 23.5] } },
        series: [
          { label: "hour", value: (u, v) => (v == null ? "" : `${String(v).padStart(2, "0")}:00`) },
          { label: "today", stroke: "#8a4b2a", fill: "rgba(138,75,42,.45)", paths: uPlot.paths.bars({ size: [0.7, 30] }),
            value: (u, v) => (v == null ? "–" : money(v * 100, currency)) },
          { label: "last week", stroke: "#555", width: 2, dash: [6, 4], paths: uPlot.paths.stepped({ align: 0 }),
            value: (u, v) => (v == null ? "–" : money(v * 100, currency)) },
        ],
        axes: [{ values: (u, v) => v.map((n) => (Number.isInteger(n) ? String(n).padStart(2, "0") : "")) },
               { size: 60 }],
      }, data, $("chart-hourly"));
    } else {
      charts.hourly.setData(data);
    }
  }

  function renderOps(ops) {
    const set = (id, text, cls) => { const n = $(id); n.textContent = text; n.className = cls || ""; };
    const off = (part) => (part.status === "off" ? "not configured" : "unavailable: " + part.error);
    const i = ops.ingest || {}, k = ops.kafka || {}, f = ops.flink || {}, d = ops.dlq || {}, l = ops.ledger || {};
    const severity = { ok: "", warning: "warn", critical: "bad" };
    if (i.status === "ok") {
      const span = i.window_s == null ? "since the ingest started" : `in the last ${age(i.window_s)}`;
      set("ops-p99", i.p99_ms == null ? `no requests ${span}`
        : `${i.p99_ms.toFixed(1)} ms (${intFmt.format(i.requests)} requests ${span})`);
    } else set("ops-p99", off(i), i.status === "error" ? "bad" : "");
    if (k.status === "ok") set("ops-lag", `${intFmt.format(k.lag)} orders`, k.lag > 0 ? "warn" : "");
    else set("ops-lag", off(k), k.status === "error" ? "bad" : "");
    if (f.status === "ok") {
      set("ops-job", f.job_state, severity[f.job_severity] ?? "bad");
      set("ops-checkpoint", f.last_checkpoint_age_s == null ? "none yet" : `${age(f.last_checkpoint_age_s)} ago`
        + (f.checkpoints_failed ? ` (${f.checkpoints_failed} failed)` : ""));
    } else {
      set("ops-job", off(f), f.status === "error" ? "bad" : "");
      set("ops-checkpoint", "–");
    }
    if (d.status === "ok") set("ops-dlq", d.count == null ? d.note : intFmt.format(d.count), d.count > 0 ? "warn" : "");
    else set("ops-dlq", off(d), d.status === "error" ? "bad" : "");
    // The ledger audit's verdict: its words come from the server (coffee_dashboard.ledger).
    if (l.status === "ok") set("ops-ledger", l.summary, { agrees: "", differs: "bad", unknown: "warn" }[l.verdict]);
    else if (l.status === "error") set("ops-ledger", "unknown: the auditor did not answer: " + l.error, "warn");
    else set("ops-ledger", off(l));
    if (ops.checked_at_ms) $("ops-checked").textContent = "checked " + new Date(ops.checked_at_ms).toLocaleTimeString("en-GB");
  }

  // -- freshness: the part that must never lie ----------------------------------------------------
  function pageState() {
    const silentFor = (Date.now() - lastEventAt) / 1000;
    if (!status || silentFor > Math.max(5, 3 * heartbeatS)) return "disconnected";
    if (status.state === "down") return "down";
    const ageS = lastUpdateMs == null ? null : (Date.now() + clockOffset - lastUpdateMs) / 1000;
    if (status.state === "stale" || ageS == null || ageS > status.stale_after_s) return "stale";
    return "live";
  }

  function renderFreshness() {
    const state = pageState();
    document.body.dataset.state = state;
    const pill = $("freshness"), banner = $("banner");
    pill.dataset.state = state;
    pill.dataset.severity = state === "live" ? "ok" : (state === "stale" && status ? status.severity : "critical");
    const ageS = lastUpdateMs == null ? null : (Date.now() + clockOffset - lastUpdateMs) / 1000;
    const updated = ageS == null ? "no update yet" : `updated ${age(ageS)} ago`;
    pill.textContent = state === "live" ? `Live · ${updated}` : `${state.toUpperCase()} · ${updated}`;
    let headline = "", detail = "", severity = "critical";
    if (state === "disconnected") {
      headline = "Lost connection to the dashboard server — reconnecting";
      detail = "The numbers below are from " + (lastEventAt ? new Date(lastEventAt).toLocaleTimeString("en-GB") : "never")
        + " and are NOT live.";
    } else if (state === "down" || state === "stale") {
      headline = status.headline; detail = status.detail; severity = status.severity;
      if (state === "stale" && status.state === "live") {  // our own clock says stale before the server's next beat
        headline = `Stale: no update for ${age(ageS)}`; detail = "Waiting for the pipeline's next update.";
      }
    }
    banner.hidden = state === "live";
    banner.dataset.state = state;
    banner.dataset.severity = severity;
    $("banner-headline").textContent = headline;
    $("banner-detail").textContent = detail;
  }

  // -- the stream ------------------------------------------------------------------------------
  function fillStores(stores) {
    const select = $("store");
    select.replaceChildren(...stores.map((s) =>
      el("option", { value: s.store }, s.store === ALL ? "All stores" : `${s.store} (${s.timezone})`)));
    if (!stores.some((s) => s.store === store)) store = ALL;
    select.value = store;
  }

  function connect() {
    if (source) source.close();
    for (const chart of Object.values(charts)) chart.destroy();
    charts = {};
    $("chart-minutes").replaceChildren(); $("chart-hourly").replaceChildren();
    seenOrders = new Set();
    lastUpdateMs = null;
    source = new EventSource(`/api/v1/stream?store=${encodeURIComponent(store)}`);
    const on = (name, fn) => source.addEventListener(name, (e) => {
      lastEventAt = Date.now();
      fn(JSON.parse(e.data));
      renderFreshness();
    });
    on("hello", (h) => { heartbeatS = h.heartbeat_s; fillStores(h.stores); });
    on("summary", renderSummary);
    on("status", (s) => {
      status = s;
      clockOffset = s.now_ms - Date.now();
      if (s.last_update_ms) lastUpdateMs = Math.max(lastUpdateMs || 0, s.last_update_ms);
    });
    on("ops", renderOps);
    on("history", renderHistory);
    source.onerror = () => renderFreshness();
  }

  $("store").addEventListener("change", (e) => {
    store = e.target.value;
    const url = new URL(location.href);
    if (store === ALL) url.searchParams.delete("store"); else url.searchParams.set("store", store);
    history.replaceState(null, "", url);
    connect();
  });
  window.addEventListener("resize", () => {
    for (const [name, chart] of Object.entries(charts)) {
      chart.setSize({ width: chartWidth(name === "minutes" ? "chart-minutes" : "chart-hourly"), height: chart.height });
    }
  });
  setInterval(renderFreshness, 1000);
  connect();
})();
