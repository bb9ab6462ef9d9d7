// streamd live dashboard. Plain JS, no build step; uPlot (vendor/) draws
// the charts.
//
// How it works:
//   - config.json (served beside this file by the admin port) names the
//     engine's WebSocket port and path; the page connects to
//     ws://<this page's host>:PORT/PATH (?ws=URL overrides it).
//   - config.json also carries a short-lived admin ticket ("token"): the
//     $sys.* rooms are admin-only (docs/security.md). The page sends it in
//     an auth message before its joins, fetches a fresh one before every
//     (re)connect, and refreshes it on the open connection at half its
//     lifetime. (The admin server asks for its token when one is set;
//     open /dashboard/?token=ADMIN_TOKEN once and a cookie keeps it.)
//   - It joins two system rooms with the wire protocol v1 (README.md):
//     "$sys.metrics", where the engine publishes a MetricsSnapshot
//     (engine/snapshot.go) every MetricsInterval, and "$sys.alerts", where
//     alert rules publish firing/resolved events. The first join asks for
//     the rooms' history (since 0), so the charts start with what the
//     rooms still hold; a re-join after a reconnect asks for what came
//     after the last seq seen.
//   - A lost connection is retried with exponential backoff and jitter
//     (0.5 s doubling to 15 s); the status line says which.
//   - Everything received is untrusted text: the page builds its DOM with
//     textContent only, never innerHTML.
//
// window.dashboardState is a plain summary of what the page holds, for
// tests (cmd/streamd/dashboard_test.go) and for a look from the console.
(function () {
  "use strict";

  const METRICS_ROOM = "$sys.metrics";
  const ALERTS_ROOM = "$sys.alerts";
  const WINDOW_MS = 5 * 60 * 1000; // the time charts show the last five minutes
  const MAX_POINTS = 3000; // … and at most this many snapshots
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const MAX_EVENTS = 50; // alert events kept for the "recent events" list
  const STAGES = ["ingress", "ring", "fanout", "write", "e2e"];
  // Keep in step with style.css.
  const COLORS = {
    in: "#4cc2ff",
    out: "#f78c6c",
    p50: "#3ecf8e",
    p99: "#f5b942",
    p999: "#ff5d6c",
    conns: "#c792ea",
    rooms: "#4cc2ff",
    axis: "#8a93a3",
    grid: "#232935",
  };

  const state = (window.dashboardState = {
    status: "starting", // connecting | connected | stale | reconnecting
    wsURL: "",
    connects: 0, // welcomes received
    reconnects: 0, // reconnects scheduled
    snapshots: 0, // distinct snapshots applied
    firstSnapshotTime: 0, // the oldest one's time, Unix ms
    lastSnapshotTime: 0, // the newest one's time, Unix ms
    seq: {}, // the last seq seen, by room
    series: { throughput: 0, latency: 0, conns: 0, histogram: 0 }, // points per chart
    alerts: [], // names of the firing alerts on the page
    alertEvents: 0, // $sys.alerts events applied
    latest: null, // a few figures of the newest snapshot: in_per_s, out_per_s, e2e_p99, connections, rooms
    pipelines: 0, // rows of the pipeline table
    renders: 0, // redraws
    errors: [], // exceptions, server `error` frames, data the page could not use
  });

  // ---- errors ---------------------------------------------------------------

  function noteError(msg) {
    state.errors.push(String(msg));
    if (state.errors.length > 50) state.errors.shift();
    console.warn("dashboard:", String(msg));
    renderFoot();
  }
  window.addEventListener("error", (e) => {
    // Benign by the spec: some resize notifications wait for the next frame.
    if (!e.error && /^ResizeObserver loop/.test(e.message)) return;
    noteError("exception: " + (e.error && e.error.stack ? e.error.stack : e.message));
  });
  window.addEventListener("unhandledrejection", (e) => noteError("unhandled rejection: " + (e.reason && e.reason.stack ? e.reason.stack : e.reason)));

  // ---- formatting -----------------------------------------------------------

  function num(v) {
    const n = typeof v === "number" ? v : Number(v);
    return Number.isFinite(n) ? n : null;
  }
  function str(v) {
    return v == null ? "" : String(v);
  }
  function sumValues(obj) {
    let s = 0;
    if (obj && typeof obj === "object") for (const k in obj) s += num(obj[k]) || 0;
    return s;
  }
  // fmtCount: 0, 0.017, 7, 7.5, 123, 1.23k, 45.6k, 1.2M.
  function fmtCount(v) {
    v = num(v);
    if (v == null) return "–";
    const a = Math.abs(v);
    if (a > 0 && a < 0.1) return String(+v.toPrecision(2));
    if (a < 10 && !Number.isInteger(v)) return v.toFixed(1);
    if (a < 1000) return Math.round(v).toString();
    for (const [d, u] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
      if (a >= d) {
        const x = v / d;
        return (Math.abs(x) < 10 ? x.toFixed(2) : Math.abs(x) < 100 ? x.toFixed(1) : x.toFixed(0)) + u;
      }
    }
    return String(v);
  }
  function fmtMs(v) {
    v = num(v);
    if (v == null) return "–";
    if (v === 0) return "0";
    if (v < 1) return (v * 1000).toFixed(v < 0.01 ? 1 : 0) + " µs";
    if (v < 10) return v.toFixed(2) + " ms";
    if (v < 100) return v.toFixed(1) + " ms";
    if (v < 10000) return v.toFixed(0) + " ms";
    return (v / 1000).toFixed(1) + " s";
  }
  function fmtMsShort(v) {
    v = num(v);
    if (v == null) return "";
    if (v < 1) return +(v * 1000).toPrecision(3) + "µs";
    if (v < 1000) return +v.toPrecision(3) + "ms";
    return +(v / 1000).toPrecision(3) + "s";
  }
  function fmtBytes(v) {
    v = num(v);
    if (v == null) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? Math.round(v) : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)) + " " + units[i];
  }
  function fmtDuration(s) {
    s = Math.max(0, Math.floor(num(s) || 0));
    const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), ss = s % 60;
    const p2 = (x) => String(x).padStart(2, "0");
    if (d > 0) return d + "d " + hh + "h";
    if (hh > 0) return hh + "h " + p2(m) + "m";
    if (m > 0) return m + "m " + p2(ss) + "s";
    return ss + "s";
  }
  function fmtClock(ms) {
    const d = new Date(ms);
    const p2 = (x) => String(x).padStart(2, "0");
    return p2(d.getHours()) + ":" + p2(d.getMinutes()) + ":" + p2(d.getSeconds());
  }
  // toMs reads a time as Unix ms: a number (ms, or s when it is too small
  // to be ms) or a date string.
  function toMs(v) {
    if (typeof v === "number" && Number.isFinite(v)) return v < 1e11 ? v * 1000 : v;
    if (typeof v === "string" && v !== "") {
      const n = Number(v);
      if (Number.isFinite(n)) return toMs(n);
      const t = Date.parse(v);
      if (Number.isFinite(t)) return t;
    }
    return 0;
  }

  // h builds an element; string children become text nodes.
  function h(tag, cls, ...kids) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    for (const k of kids) if (k != null) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function setText(id, text, bad) {
    const e = document.getElementById(id);
    if (!e) return;
    if (e.textContent !== text) e.textContent = text;
    if (bad !== undefined) e.classList.toggle("bad", !!bad);
  }

  // ---- data held ------------------------------------------------------------

  // ts holds the time series as uPlot wants them: one array per column,
  // t in Unix seconds; null is a gap (a missed stretch of snapshots).
  const ts = { t: [], in: [], out: [], p50: [], p99: [], p999: [], conns: [], rooms: [] };
  let last = null; // the newest snapshot
  let prev = null; // the one before it
  let intervalMs = 1000; // the snapshot interval, as observed
  let lastSnapshotAt = 0; // Date.now() when the newest snapshot arrived

  function pushRow(row) {
    for (const k in ts) ts[k].push(row[k] === undefined ? null : row[k]);
    const cutoff = row.t - WINDOW_MS / 1000;
    let drop = 0;
    while (drop < ts.t.length && (ts.t[drop] < cutoff || ts.t.length - drop > MAX_POINTS)) drop++;
    if (drop > 0) for (const k in ts) ts[k].splice(0, drop);
  }

  function applySnapshot(s) {
    if (!s || typeof s !== "object" || !num(s.time)) {
      noteError("a $sys.metrics message that is not a snapshot: " + JSON.stringify(s).slice(0, 120));
      return;
    }
    if (s.time <= state.lastSnapshotTime) return; // already seen (a replay)
    if (last) {
      const gap = s.time - last.time;
      if (gap > Math.max(3 * intervalMs, 1500)) {
        // Snapshots were missed (a reconnect, an engine restart): break
        // the lines instead of drawing across the hole.
        pushRow({ t: (last.time + intervalMs) / 1000 });
      } else {
        intervalMs = 0.8 * intervalMs + 0.2 * gap;
      }
    }
    prev = last;
    last = s;
    lastSnapshotAt = Date.now();
    state.snapshots++;
    state.lastSnapshotTime = s.time;
    if (!state.firstSnapshotTime) state.firstSnapshotTime = s.time;

    const m = s.messages || {};
    const e2e = (s.latency && s.latency.e2e) || {};
    const positive = (v) => (num(v) > 0 ? num(v) : null); // the log scale has no 0
    pushRow({
      t: s.time / 1000,
      in: num(m.in_per_s),
      out: num(m.out_per_s),
      p50: positive(e2e.p50),
      p99: positive(e2e.p99),
      p999: positive(e2e.p999),
      conns: num(s.connections && s.connections.open),
      rooms: num(s.rooms),
    });
    state.series.throughput = state.series.latency = state.series.conns = ts.t.length;
    state.latest = {
      in_per_s: num(m.in_per_s),
      out_per_s: num(m.out_per_s),
      e2e_p99: num(e2e.p99),
      connections: num(s.connections && s.connections.open),
      rooms: num(s.rooms),
    };
    const hist = s.histogram || {};
    state.series.histogram = Array.isArray(hist.counts) ? hist.counts.length : 0;
    snapAlerts = Array.isArray(s.alerts) ? s.alerts : [];
    snapAlertsTime = s.time;
    recomputeAlerts();
    scheduleRender();
  }

  // ---- alerts ---------------------------------------------------------------
  //
  // The newest snapshot's `alerts` is the list of firing alerts as of its
  // time. Events from $sys.alerts that are newer than that snapshot are
  // applied over it (a firing adds or updates, a resolved removes), so an
  // alert shows up at once and the two rooms may arrive in any order.

  let snapAlerts = [];
  let snapAlertsTime = 0;
  const events = []; // normalized $sys.alerts events, oldest first
  const eventKeys = new Set();
  const lastEventByRule = new Map(); // for threshold and metric, which snapshots lack
  let firing = []; // what the panel shows

  const SEVERITY_RANK = { critical: 0, error: 1, warning: 2, info: 3 };

  function applyAlertEvent(d) {
    if (!d || typeof d !== "object") {
      noteError("a $sys.alerts message that is not an event: " + JSON.stringify(d).slice(0, 120));
      return;
    }
    const ev = {
      rule: str(d.rule || d.name),
      severity: str(d.severity || "warning").toLowerCase(),
      state: str(d.state || "firing").toLowerCase(),
      value: num(d.value),
      threshold: num(d.threshold),
      metric: str(d.metric),
      message: str(d.message),
      action: str(d.action),
      at: toMs(d.at) || Date.now(),
    };
    const key = ev.rule + "\u0000" + ev.state + "\u0000" + ev.at;
    if (eventKeys.has(key)) return;
    eventKeys.add(key);
    events.push(ev);
    events.sort((a, b) => a.at - b.at);
    while (events.length > MAX_EVENTS) {
      const old = events.shift();
      eventKeys.delete(old.rule + "\u0000" + old.state + "\u0000" + old.at);
    }
    lastEventByRule.set(ev.rule, ev);
    state.alertEvents++;
    recomputeAlerts();
    scheduleRender();
  }

  function recomputeAlerts() {
    const byName = new Map();
    for (const a of snapAlerts) {
      if (!a || typeof a !== "object") continue;
      const name = str(a.name || a.rule);
      byName.set(name, {
        name,
        severity: str(a.severity || "warning").toLowerCase(),
        since: toMs(a.since),
        value: num(a.value),
        message: str(a.message),
        action: str(a.action),
      });
    }
    for (const ev of events) {
      if (ev.at <= snapAlertsTime) continue; // the snapshot already counts it
      if (ev.state === "resolved") {
        byName.delete(ev.rule);
      } else if (ev.state === "firing") {
        const was = byName.get(ev.rule);
        byName.set(ev.rule, {
          name: ev.rule,
          severity: ev.severity,
          since: was && was.since ? was.since : ev.at,
          value: ev.value,
          message: ev.message,
          action: ev.action,
        });
      }
    }
    firing = [...byName.values()].sort(
      (a, b) => (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) || a.since - b.since || (a.name < b.name ? -1 : 1),
    );
    state.alerts = firing.map((a) => a.name);
  }

  // ---- charts ---------------------------------------------------------------

  function axis(extra) {
    return Object.assign(
      {
        stroke: COLORS.axis,
        grid: { stroke: COLORS.grid, width: 1 },
        ticks: { stroke: COLORS.grid, width: 1 },
        font: "11px system-ui, sans-serif",
      },
      extra,
    );
  }

  const charts = {};

  // makeChart builds a uPlot chart filling el's width, resized with it.
  function makeChart(el, opts, columns) {
    const u = new uPlot(
      Object.assign({ width: Math.max(el.clientWidth, 200), height: 190, cursor: { drag: { x: false, y: false, setScale: false } } }, opts),
      Array.from({ length: columns }, () => []),
      el,
    );
    let w = el.clientWidth;
    new ResizeObserver(() => {
      // Resize in the next frame, not inside the observer: a size change
      // there would be observed again in the same frame.
      requestAnimationFrame(() => {
        if (el.clientWidth !== w && el.clientWidth > 0) {
          w = el.clientWidth;
          u.setSize({ width: w, height: u.height });
        }
      });
    }).observe(el);
    return u;
  }

  // lastValue is a column's newest non-null value: what a legend shows
  // while the cursor is off the chart.
  function lastValue(col) {
    for (let i = col.length - 1; i >= 0; i--) if (col[i] != null) return col[i];
    return null;
  }

  // legendValue formats the value under the cursor, or the newest one.
  function legendValue(fmt) {
    return (u, v, si, idx) => {
      if (idx == null) v = lastValue(u.data[si] || []);
      return v == null ? "–" : fmt(v);
    };
  }

  function timeSeries(label, color, fmt, extra) {
    return Object.assign({ label, stroke: color, width: 2, points: { show: false }, value: legendValue(fmt) }, extra);
  }

  // logSplits puts the ticks of a log axis on 1, 2, 5 × 10^n, or on the
  // decades alone when the range spans more than two.
  function logSplits(u, axisIdx, min, max) {
    const out = [];
    if (!(min > 0) || !(max > min)) return out;
    const lo = Math.floor(Math.log10(min)), hi = Math.ceil(Math.log10(max));
    const mantissas = hi - lo > 2 ? [1] : [1, 2, 5];
    for (let e = lo; e <= hi; e++) {
      for (const m of mantissas) {
        const v = +(m * 10 ** e).toPrecision(6);
        if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
      }
    }
    return out;
  }

  function buildCharts() {
    const xSeries = { value: legendValue((v) => fmtClock(v * 1000)) };
    charts.throughput = makeChart(
      document.getElementById("chart-throughput"),
      {
        height: 230,
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max * 1.1, 1)] } },
        series: [xSeries, timeSeries("in/s", COLORS.in, fmtCount, { fill: "rgba(76,194,255,0.10)" }), timeSeries("out/s", COLORS.out, fmtCount)],
        axes: [axis({}), axis({ size: 56, values: (u, vs) => vs.map(fmtCount) })],
      },
      3,
    );
    charts.latency = makeChart(
      document.getElementById("chart-latency"),
      {
        scales: { x: { time: true }, y: { distr: 3, log: 10 } },
        series: [xSeries, timeSeries("p50", COLORS.p50, fmtMs), timeSeries("p99", COLORS.p99, fmtMs), timeSeries("p99.9", COLORS.p999, fmtMs)],
        axes: [axis({}), axis({ size: 56, splits: logSplits, values: (u, vs) => vs.map(fmtMsShort) })],
      },
      4,
    );
    charts.conns = makeChart(
      document.getElementById("chart-conns"),
      {
        height: 200,
        scales: {
          x: { time: true },
          conns: { range: (u, min, max) => [0, Math.max(max * 1.15, 1)] },
          rooms: { range: (u, min, max) => [0, Math.max(max * 1.15, 1)] },
        },
        series: [xSeries, timeSeries("connections", COLORS.conns, fmtCount, { scale: "conns" }), timeSeries("rooms", COLORS.rooms, fmtCount, { scale: "rooms", dash: [4, 3], width: 1.5 })],
        axes: [
          axis({ space: 70 }),
          axis({ scale: "conns", size: 44, values: (u, vs) => vs.map(fmtCount) }),
          axis({ scale: "rooms", side: 1, size: 44, grid: { show: false }, values: (u, vs) => vs.map(fmtCount) }),
        ],
      },
      3,
    );
    const histLabel = (i) => {
      const b = (last && last.histogram && last.histogram.bounds_ms) || [];
      const bound = num(b[i]);
      if (i < b.length && bound != null && bound < 1e300) return "≤" + fmtMsShort(bound);
      return b.length ? ">" + fmtMsShort(b[b.length - 1] < 1e300 ? b[b.length - 1] : b[b.length - 2]) : "";
    };
    charts.histogram = makeChart(
      document.getElementById("chart-histogram"),
      {
        scales: {
          x: { time: false, range: (u) => [-0.5, Math.max(u.data[0].length, 1) - 0.5] },
          y: { range: (u, min, max) => [0, Math.max(max * 1.1, 1)] },
        },
        series: [
          { label: "bucket", value: (u, v, si, idx) => (idx == null || v == null ? "all" : histLabel(v)) },
          {
            label: "messages",
            stroke: COLORS.in,
            fill: "rgba(76,194,255,0.45)",
            width: 1,
            points: { show: false },
            paths: uPlot.paths.bars({ size: [0.8, 48], align: 0 }),
            value: (u, v, si, idx) => {
              if (idx != null) return v == null ? "–" : fmtCount(v);
              let total = 0;
              for (const c of u.data[si] || []) total += c || 0;
              return fmtCount(total) + " in all";
            },
          },
        ],
        axes: [
          axis({
            splits: (u) => {
              const n = u.data[0].length;
              const step = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(u.bbox.width / devicePixelRatio / 52))));
              const out = [];
              for (let i = 0; i < n; i += step) out.push(i);
              return out;
            },
            values: (u, vs) => vs.map(histLabel),
          }),
          axis({ size: 56, values: (u, vs) => vs.map(fmtCount) }),
        ],
      },
      2,
    );
  }

  // ---- rendering ------------------------------------------------------------

  let renderPending = false;
  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    const run = () => {
      if (!renderPending) return;
      renderPending = false;
      render();
    };
    requestAnimationFrame(run);
    setTimeout(run, 400); // animation frames stop in a hidden tab
  }

  function render() {
    state.renders++;
    if (charts.throughput) {
      charts.throughput.setData([ts.t, ts.in, ts.out]);
      charts.latency.setData([ts.t, ts.p50, ts.p99, ts.p999]);
      charts.conns.setData([ts.t, ts.conns, ts.rooms]);
      const counts = (last && last.histogram && Array.isArray(last.histogram.counts) && last.histogram.counts) || [];
      charts.histogram.setData([counts.map((_, i) => i), counts.map(num)]);
    }
    if (last) {
      renderTiles();
      renderStages();
      renderDropsErrors();
      renderPipelines();
    }
    renderAlerts();
    renderStatus();
    renderMeta();
    renderFoot();
  }

  function renderTiles() {
    const s = last;
    const m = s.messages || {};
    const b = s.bytes || {};
    const c = s.connections || {};
    const e2e = (s.latency && s.latency.e2e) || {};
    const rt = s.runtime || {};
    setText("t-in", fmtCount(m.in_per_s));
    setText("t-in-sub", "1m avg " + fmtCount(m.in_per_s_1m));
    setText("t-out", fmtCount(m.out_per_s));
    setText("t-out-sub", "1m avg " + fmtCount(m.out_per_s_1m));
    setText("t-conns", fmtCount(c.open));
    setText("t-conns-sub", "+" + fmtCount(c.opened_per_s) + "/s · " + fmtCount(sumValues(c.closed)) + " closed");
    document.getElementById("t-in").parentElement.title = fmtCount(m.in_total) + " messages in since start";
    document.getElementById("t-out").parentElement.title = fmtCount(m.out_total) + " messages out since start";
    setText("t-rooms", fmtCount(s.rooms));
    setText("t-rooms-sub", fmtCount(s.members) + " memberships");
    setText("t-p99", fmtMs(e2e.p99));
    setText("t-p99-sub", "p50 " + fmtMs(e2e.p50));
    setText("t-bytes", fmtBytes(b.in_per_s) + "/s");
    setText("t-bytes-sub", "out " + fmtBytes(b.out_per_s) + "/s");
    const drops = sumValues(s.drops), errs = sumValues(s.errors);
    const newDrops = prev ? drops - sumValues(prev.drops) : 0;
    const newErrs = prev ? errs - sumValues(prev.errors) : 0;
    setText("t-drops", fmtCount(drops) + " · " + fmtCount(errs), newDrops > 0 || newErrs > 0);
    setText("t-drops-sub", newDrops > 0 || newErrs > 0 ? "+" + fmtCount(newDrops) + " · +" + fmtCount(newErrs) + " since last" : "none new");
    setText("t-mem", fmtBytes(rt.rss_bytes));
    setText("t-mem-sub", "heap " + fmtBytes(rt.heap_bytes));
  }

  function renderStages() {
    const tbody = document.querySelector("#stages tbody");
    const lat = last.latency || {};
    const names = STAGES.concat(Object.keys(lat).filter((k) => !STAGES.includes(k)).sort());
    const rows = [];
    for (const name of names) {
      const l = lat[name];
      if (!l) continue;
      rows.push(h("tr", null, h("td", null, name), h("td", null, fmtMs(l.p50)), h("td", null, fmtMs(l.p90)), h("td", null, fmtMs(l.p99)), h("td", null, fmtMs(l.p999)), h("td", null, fmtMs(l.max))));
    }
    if (!rows.length) rows.push(h("tr", "empty", Object.assign(h("td", null, "no latency figures"), { colSpan: 6 })));
    tbody.replaceChildren(...rows);
  }

  function renderKV(id, obj, fmt, badIfPositive) {
    const dl = document.getElementById(id);
    const keys = obj && typeof obj === "object" ? Object.keys(obj).sort() : [];
    const kids = [];
    for (const k of keys) {
      const v = num(obj[k]);
      kids.push(h("dt", null, k), h("dd", badIfPositive && v > 0 ? "bad" : null, fmt(v)));
    }
    if (!kids.length) kids.push(h("div", "empty", "none"));
    dl.replaceChildren(...kids);
  }

  function renderDropsErrors() {
    renderKV("drops", last.drops, fmtCount, true);
    renderKV("errors", last.errors, fmtCount, true);
    const q = last.queues || {};
    const rt = last.runtime || {};
    const fill = num(q.ring_fill_max);
    const kv = {
      "ring fill (max)": fill == null ? "–" : (fill * 100).toFixed(fill < 0.1 ? 1 : 0) + " %",
      "outbound queued": fmtBytes(q.outbound_bytes),
      "goroutines": fmtCount(rt.goroutines),
      "heap": fmtBytes(rt.heap_bytes),
      "rss": fmtBytes(rt.rss_bytes),
      "gc pause p99": fmtMs(rt.gc_pause_p99_ms),
      "gc cycles": fmtCount(rt.gc_cycles),
    };
    const kids = [];
    for (const k in kv) kids.push(h("dt", null, k), h("dd", null, kv[k]));
    document.getElementById("runtime").replaceChildren(...kids);
  }

  function renderPipelines() {
    const tbody = document.querySelector("#pipelines tbody");
    const nodes = Array.isArray(last.pipelines) ? last.pipelines.filter((n) => n && typeof n === "object") : [];
    state.pipelines = nodes.length;
    const rows = nodes.map((n) =>
      h(
        "tr",
        null,
        h("td", null, str(n.pipeline)),
        h("td", null, str(n.node)),
        h("td", "kind", str(n.kind)),
        h("td", null, fmtCount(n.in_per_s)),
        h("td", null, fmtCount(n.out_per_s)),
        h("td", num(n.dropped) > 0 ? "bad" : null, fmtCount(n.dropped)),
        h("td", num(n.errors) > 0 ? "bad" : null, fmtCount(n.errors)),
        h("td", null, fmtCount(n.late)),
        h("td", null, fmtMs(n.p99_ms)),
      ),
    );
    if (!rows.length) rows.push(h("tr", "empty", Object.assign(h("td", null, "no pipelines running"), { colSpan: 9 })));
    tbody.replaceChildren(...rows);
    const names = new Set(nodes.map((n) => n.pipeline));
    setText("pipelines-count", nodes.length ? names.size + " pipeline" + (names.size === 1 ? "" : "s") + ", " + nodes.length + " nodes" : "");
  }

  function renderAlerts() {
    const ul = document.getElementById("alerts-firing");
    const now = Date.now();
    const items = firing.map((a) => {
      const sev = "sev-" + a.severity.replace(/[^a-z]/g, "");
      const ev = lastEventByRule.get(a.name);
      const detail = [];
      if (a.value != null) detail.push("value " + +a.value.toPrecision(4));
      if (ev && ev.threshold != null) detail.push("threshold " + +ev.threshold.toPrecision(4));
      if (ev && ev.metric) detail.push(ev.metric);
      if (a.action) detail.push("→ " + a.action);
      return h(
        "li",
        sev,
        h("div", "alert-head", h("span", "badge " + sev, a.severity), h("span", "alert-name", a.name), h("span", "alert-for", a.since ? "for " + fmtDuration((now - a.since) / 1000) : "")),
        a.message ? h("div", "alert-msg", a.message) : null,
        detail.length ? h("div", "alert-detail", detail.join(" · ")) : null,
      );
    });
    if (!items.length) items.push(h("li", "empty", last ? "all clear: no alert firing" : "no snapshot yet"));
    ul.replaceChildren(...items);
    setText("alerts-count", firing.length ? firing.length + " firing" : "none firing");

    const evs = document.getElementById("alerts-events");
    const rows = events
      .slice()
      .reverse()
      .map((e) => {
        const what = [e.rule];
        if (e.value != null) what.push(+e.value.toPrecision(4) + (e.threshold != null ? (e.state === "resolved" ? " ≤ " : " > ") + +e.threshold.toPrecision(4) : ""));
        if (e.message) what.push(e.message);
        const li = h("li", null, h("span", "when", fmtClock(e.at)), h("span", "badge " + (e.state === "resolved" ? "st-resolved" : "sev-" + e.severity.replace(/[^a-z]/g, "")), e.state), h("span", "what", what.join(" · ")));
        li.title = what.join(" · ");
        return li;
      });
    if (!rows.length) rows.push(h("li", "empty", "no alert events yet"));
    evs.replaceChildren(...rows);
  }

  function renderMeta() {
    const parts = [];
    if (last) {
      parts.push("uptime " + fmtDuration(last.uptime_s));
      const age = (Date.now() - lastSnapshotAt) / 1000;
      parts.push("updated " + (age < 1 ? "just now" : fmtDuration(age) + " ago"));
      parts.push("every " + (intervalMs < 1000 ? Math.round(intervalMs) + " ms" : (intervalMs / 1000).toFixed(1) + " s"));
    }
    setText("meta", parts.join(" · "));
  }

  function renderFoot() {
    const foot = document.getElementById("foot");
    if (!foot) return;
    const kids = [h("span", null, (state.wsURL || "…") + " · " + state.snapshots + " snapshots · " + state.alertEvents + " alert events")];
    if (state.errors.length) kids.push(" · ", h("span", "err", state.errors.length + " page errors, last: " + state.errors[state.errors.length - 1]));
    foot.replaceChildren(...kids);
  }

  // ---- status line ----------------------------------------------------------

  let statusDetail = ""; // why the last connection ended
  let retryAt = 0;
  let attempt = 0;

  function renderStatus() {
    let cls = state.status;
    let text;
    switch (state.status) {
      case "connecting":
        text = "connecting to " + state.wsURL;
        break;
      case "connected": {
        text = "connected";
        if (!last || lastSnapshotAt === 0) {
          text += " · waiting for snapshots in " + METRICS_ROOM;
        } else {
          const age = Date.now() - lastSnapshotAt;
          if (age > Math.max(5000, 5 * intervalMs)) {
            cls = "stale";
            text += " · no snapshot for " + fmtDuration(age / 1000);
          }
        }
        break;
      }
      case "reconnecting": {
        const wait = Math.max(0, retryAt - Date.now()) / 1000;
        text = "reconnecting in " + wait.toFixed(1) + " s (attempt " + attempt + ")" + (statusDetail ? " · " + statusDetail : "");
        break;
      }
      default:
        text = state.status;
    }
    const el = document.getElementById("status");
    el.className = "status status-" + cls;
    setText("status-text", text);
  }

  function setStatus(s) {
    state.status = s;
    renderStatus();
  }

  // ---- connection -----------------------------------------------------------

  let ws = null;
  let retryTimer = 0;
  let ticket = ""; // the admin ticket of config.json ("" when there is none)
  let ticketTTL = 0; // its lifetime, seconds
  let refreshTimer = 0;
  let heartbeatMs = 25000;
  let lastFrameAt = 0;
  let lastPingAt = 0;
  const lastSeq = { [METRICS_ROOM]: 0, [ALERTS_ROOM]: 0 };
  state.seq = lastSeq;

  function send(sock, msg) {
    try {
      sock.send(JSON.stringify(msg));
    } catch (e) {
      noteError("send: " + e);
    }
  }

  // freshTicket asks config.json for a new admin ticket; it keeps the old
  // one when that fails (the connection then says why it is refused).
  async function freshTicket() {
    try {
      const r = await fetch("config.json", { cache: "no-store" });
      if (!r.ok) throw new Error("config.json: HTTP " + r.status);
      const cfg = await r.json();
      ticket = str(cfg.token);
      ticketTTL = num(cfg.token_ttl_s) || 0;
    } catch (e) {
      noteError("admin ticket: " + (e.message || e));
    }
  }

  // scheduleRefresh re-authenticates the open connection at half the
  // ticket's lifetime, before the engine closes it (4002).
  function scheduleRefresh(sock) {
    clearTimeout(refreshTimer);
    if (!ticketTTL) return;
    refreshTimer = setTimeout(async () => {
      if (ws !== sock) return;
      await freshTicket();
      if (ws === sock && ticket) send(sock, { type: "auth", token: ticket, id: "refresh" });
      scheduleRefresh(sock);
    }, (ticketTTL * 1000) / 2);
  }

  async function connect() {
    clearTimeout(retryTimer);
    setStatus("connecting");
    await freshTicket();
    let sock;
    try {
      sock = new WebSocket(state.wsURL);
    } catch (e) {
      noteError("WebSocket " + state.wsURL + ": " + e);
      scheduleReconnect("bad URL");
      return;
    }
    ws = sock;
    sock.binaryType = "arraybuffer";
    sock.onopen = () => {
      if (ws !== sock) return;
      lastFrameAt = Date.now();
      if (ticket) {
        send(sock, { type: "auth", token: ticket, id: "auth" });
        scheduleRefresh(sock);
      }
      for (const room of [METRICS_ROOM, ALERTS_ROOM]) send(sock, { type: "join", room, since: lastSeq[room], id: "join " + room });
    };
    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      lastFrameAt = Date.now();
      if (typeof ev.data !== "string") return; // the page sends JSON only, so the server answers in JSON
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch (e) {
        noteError("a frame that is not JSON: " + ev.data.slice(0, 120));
        return;
      }
      onFrame(sock, m);
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      scheduleReconnect("closed " + ev.code + (ev.reason ? " " + ev.reason : ""));
    };
  }

  function onFrame(sock, m) {
    switch (m.type) {
      case "welcome":
        attempt = 0;
        statusDetail = "";
        state.connects++;
        heartbeatMs = num(m.heartbeat_ms) || heartbeatMs;
        setStatus("connected");
        break;
      case "joined": {
        // A room whose last seq is behind ours is a new one: the engine
        // restarted and its seqs began again.
        const seq = num(m.seq);
        if (m.room in lastSeq && seq != null && seq < lastSeq[m.room]) lastSeq[m.room] = seq;
        break;
      }
      case "message": {
        if (!(m.room in lastSeq)) break;
        const seq = num(m.seq);
        if (seq != null) {
          if (seq <= lastSeq[m.room]) break; // a replay of one already seen
          lastSeq[m.room] = seq;
        }
        if (m.room === METRICS_ROOM) applySnapshot(m.data);
        else applyAlertEvent(m.data);
        break;
      }
      case "error":
        noteError("server: " + str(m.code) + ": " + str(m.message) + (m.id != null ? " (" + str(m.id) + ")" : ""));
        break;
      default: // pong, and whatever a later protocol adds
    }
  }

  function scheduleReconnect(why) {
    clearTimeout(retryTimer);
    attempt++;
    state.reconnects++;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (attempt - 1));
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    retryAt = Date.now() + delay;
    statusDetail = why;
    setStatus("reconnecting");
    retryTimer = setTimeout(connect, delay);
  }

  // tick runs twice a second: the status line's countdown and ages, the
  // heartbeat, and the dead-connection check.
  function tick() {
    const now = Date.now();
    if (ws && ws.readyState === WebSocket.OPEN) {
      if (now - lastFrameAt > 2 * heartbeatMs + 5000) {
        // Nothing at all for two heartbeats, pongs included: the TCP
        // connection is likely dead and the browser would take minutes to
        // notice. Drop it and start again.
        const sock = ws;
        ws = null;
        sock.close();
        scheduleReconnect("no frame for " + fmtDuration((now - lastFrameAt) / 1000));
      } else if (now - lastPingAt > heartbeatMs / 2) {
        lastPingAt = now;
        send(ws, { type: "ping" });
      }
    }
    renderStatus();
    renderMeta();
    if (firing.length) renderAlerts(); // the "for …" durations
  }

  window.addEventListener("online", () => {
    if (state.status === "reconnecting" && state.wsURL) connect();
  });

  // ---- start ----------------------------------------------------------------

  async function wsURLFromConfig() {
    const q = new URLSearchParams(location.search).get("ws");
    if (q) return q; // the ticket still comes from config.json (freshTicket)
    const r = await fetch("config.json", { cache: "no-store" });
    if (!r.ok) throw new Error("config.json: HTTP " + r.status);
    const cfg = await r.json();
    const port = num(cfg.ws_port);
    if (!port) throw new Error("config.json: no ws_port in " + JSON.stringify(cfg));
    const path = str(cfg.ws_path) || "/ws";
    return (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.hostname + ":" + port + (path.startsWith("/") ? path : "/" + path);
  }

  async function start() {
    buildCharts();
    render();
    setInterval(tick, 500);
    for (let tries = 0; ; tries++) {
      try {
        state.wsURL = await wsURLFromConfig();
        break;
      } catch (e) {
        // The admin server may be restarting: try again, backing off.
        attempt = tries + 1;
        statusDetail = String(e.message || e);
        const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** tries);
        retryAt = Date.now() + delay;
        setStatus("reconnecting");
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    attempt = 0;
    renderFoot();
    connect();
  }

  start().catch((e) => noteError("start: " + (e && e.stack ? e.stack : e)));
})();
