// streamd.js — the browser client of streamd's wire protocol v1.
//
// A dependency-free ES module (served by streamd at /client.js; types in
// streamd.d.ts). Same semantics as the Go client (package client):
//
//   - Reconnect: a lost connection is redialled after an exponential
//     backoff (reconnectInterval · 2^n, capped at maxReconnectInterval, ±
//     jitter), up to maxReconnectAttempts (0: forever); the attempt count
//     restarts after a welcome. client.state says "connecting",
//     "connected", "reconnecting" or "closed"; "state" handlers see each
//     change.
//   - Heartbeats: {"type":"ping"} every heartbeatInterval (default: the
//     welcome's heartbeat_ms); a connection that brings no frame for
//     deadAfter (default 2 × heartbeat) is dropped and redialled, even
//     when TCP stays silently open.
//   - Rooms with recovery: joined rooms are re-joined on each new
//     connection with since = the last seq seen; messages at or below it
//     are dropped, so a room handler sees each seq once, in order, as far
//     as the room's history or durable log reaches back. A
//     "recovered": false reaches the "gap" handlers.
//   - Offline queue: publishes and events made while disconnected wait in
//     a bounded queue (queueSize; queueOverflow "drop-oldest",
//     "drop-newest" or "error") and are sent in order after the re-joins.
//     Every publish and event carries producer and pseq, so one in flight
//     when the connection dropped is sent again and the engine applies it
//     once (a durable room or a checkpointing pipeline answers the resend
//     as a duplicate).
//   - Flow control: {"type":"flow","state":"pause"} from the engine holds
//     publishes and events in the queue until "resume"; gap notices
//     (backpressure dropped messages) reach the "gap" handlers.
//   - Handlers per type: on("agent_response", fn) gets every room message
//     or result whose data has that "type", and every frame of that type
//     ("presence_batch", "user_joined", …); on("connect" | "disconnect" |
//     "reconnect" | "error" | "state" | "gap", fn) for the connection's
//     life.
//   - Encodings: "json" (text frames) or "msgpack" (binary frames).
//     Browsers negotiate permessage-deflate by themselves.

const textEnc = new TextEncoder();
const textDec = new TextDecoder("utf-8", { fatal: true });

/** Default options; see streamd.d.ts. */
export const defaults = Object.freeze({
  reconnectInterval: 500,
  maxReconnectInterval: 10_000,
  maxReconnectAttempts: 0,
  jitter: 0.2,
  heartbeatInterval: 0, // 0: the welcome's heartbeat_ms
  deadAfter: 0, // 0: 2 × heartbeat
  queueSize: 1000,
  queueOverflow: "error",
  encoding: "json",
  producer: "", // "": a random id per client
  token: "", // sent as the first message {"type":"auth","token"}
  requestTimeout: 30_000,
});

export class StreamdError extends Error {
  constructor(code, message) {
    super(message ? `${code}: ${message}` : code);
    this.name = "StreamdError";
    this.code = code;
  }
}

export class StreamdClient {
  constructor(url, options = {}) {
    for (const k of Object.keys(options)) {
      if (!(k in defaults)) throw new TypeError(`streamd: unknown option ${k}`);
    }
    this.url = url;
    this.opts = { ...defaults, ...options };
    if (!["json", "msgpack"].includes(this.opts.encoding)) throw new TypeError("streamd: encoding is json or msgpack");
    if (!["drop-oldest", "drop-newest", "error"].includes(this.opts.queueOverflow)) {
      throw new TypeError("streamd: queueOverflow is drop-oldest, drop-newest or error");
    }
    this.producer = this.opts.producer || "web-" + randomId();
    this.state = "idle";
    this._handlers = new Map(); // type → Set<fn>
    this._rooms = new Map(); // room → {handler, last, joined}
    this._pending = new Map(); // id → {resolve, reject, frame, kind, timer}
    this._queue = []; // frames waiting for a connection, in order
    this._nextId = 1;
    this._pseq = 0;
    this._attempt = 0;
    this._ws = null;
    this._closed = false;
    this._timers = new Set();
  }

  // ---- handlers

  /** on(type, fn) adds a handler; it returns a function that removes it. */
  on(type, fn) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(fn);
    return () => this._handlers.get(type)?.delete(fn);
  }

  _emit(type, ...args) {
    for (const fn of this._handlers.get(type) ?? []) {
      try {
        fn(...args);
      } catch (err) {
        if (type !== "error") this._emit("error", err);
      }
    }
  }

  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    this._emit("state", s);
  }

  // ---- connection

  /** connect opens the connection; it resolves at the first welcome. */
  connect() {
    if (this._closed) return Promise.reject(new StreamdError("closed"));
    if (this._connecting) return this._connecting;
    this._connecting = new Promise((resolve, reject) => {
      this._onFirstWelcome = resolve;
      this._onGiveUp = reject;
    });
    this._dial();
    return this._connecting;
  }

  _dial() {
    if (this._closed) return;
    this._setState(this._everConnected ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this._emit("error", err);
      this._scheduleReconnect();
      return;
    }
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    const alive = () => this._ws === ws;
    ws.onopen = () => {
      if (!alive()) return;
      this._lastSeen = Date.now();
      if (this.opts.token) this._write({ type: "auth", token: this.opts.token });
    };
    ws.onmessage = (ev) => {
      if (!alive()) return;
      this._lastSeen = Date.now();
      let m;
      try {
        m = typeof ev.data === "string" ? JSON.parse(ev.data) : mpDecode(ev.data);
      } catch (err) {
        this._emit("error", err);
        return;
      }
      this._frame(m);
    };
    ws.onerror = () => {
      if (alive()) this._emit("error", new StreamdError("connection", "WebSocket error"));
    };
    ws.onclose = (ev) => {
      if (alive()) this._lost(ev.code, ev.reason);
    };
  }

  // _lost: the connection is gone (closed, or declared dead).
  _lost(code, reason) {
    const ws = this._ws;
    this._ws = null;
    this._stopHeartbeat();
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try {
        ws.close();
      } catch {
        /* already closed */
      }
    }
    const wasConnected = this.state === "connected";
    // In-flight requests go back to the front of the queue, in order:
    // publishes and events carry producer/pseq, so the engine applies a
    // resend once; joins and leaves are redone from the room table.
    const inflight = [...this._pending.values()].filter((p) => p.sent && p.resend).sort((a, b) => a.order - b.order);
    for (const p of inflight) p.sent = false;
    this._queue = [...inflight.map((p) => p.frame.id), ...this._queue];
    if (wasConnected) this._emit("disconnect", { code, reason });
    if (this._closed) return;
    if (code === 4001 || code === 4002 || code === 4003) {
      // unauthenticated, token expired, forbidden: redialling with the
      // same token would fail the same way.
      this._emit("error", new StreamdError("auth", `closed ${code} ${reason}`));
    }
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    const o = this.opts;
    this._attempt++;
    if (o.maxReconnectAttempts > 0 && this._attempt > o.maxReconnectAttempts) {
      this._giveUp(new StreamdError("reconnect_failed", `${o.maxReconnectAttempts} attempts`));
      return;
    }
    this._setState(this._everConnected ? "reconnecting" : "connecting");
    const delay = backoff(o, this._attempt);
    this._emit("reconnect", { attempt: this._attempt, delay });
    this._after(delay, () => this._dial());
  }

  _giveUp(err) {
    this._closed = true;
    this._setState("closed");
    this._failAll(err);
    this._onGiveUp?.(err);
    this._emit("error", err);
  }

  /** close ends the client: no reconnect; pending calls fail. */
  close() {
    if (this._closed) return;
    this._closed = true;
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
    this._stopHeartbeat();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      ws.close(1000, "client closed");
    }
    this._failAll(new StreamdError("closed"));
    this._setState("closed");
  }

  _failAll(err) {
    for (const p of this._pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this._pending.clear();
    this._queue = [];
  }

  _after(ms, fn) {
    const t = setTimeout(() => {
      this._timers.delete(t);
      fn();
    }, ms);
    this._timers.add(t);
    return t;
  }

  // ---- frames in

  _frame(m) {
    switch (m.type) {
      case "welcome":
        this._welcome(m);
        return;
      case "pong":
        return;
      case "flow": // flow control: publishes and events wait while paused
        this._paused = m.state === "pause";
        if (!this._paused) this._flush();
        this._emit("flow", m.state);
        return;
      case "gap": {
        // backpressure dropped messages of a room for this client: they
        // will not come, and the seqs after them are no loss
        const r = this._rooms.get(m.room);
        const since = r ? r.last : 0;
        if (r && m.to > r.last) r.last = m.to;
        this._emit("gap", { room: m.room, since, from: m.from, to: m.to });
        return;
      }
      case "message": {
        const r = this._rooms.get(m.room);
        if (r) {
          if (typeof m.seq === "number" && m.seq <= r.last) return; // seen: a replay overlap
          if (typeof m.seq === "number") r.last = m.seq;
          if (r.handler) this._call(r.handler, m);
        }
        this._emit("message", m);
        this._typed(m);
        return;
      }
      case "joined": {
        const r = this._rooms.get(m.room);
        if (r && m.recovered === false) this._emit("gap", { room: m.room, since: r.last, seq: m.seq });
        if (r) r.wasJoined = true;
        break;
      }
      case "result":
        this._typed(m);
        break;
      case "error":
        if (m.id === undefined || !this._pending.has(m.id)) this._emit("error", new StreamdError(m.code, m.message));
        break;
      default:
        this._emit(m.type, m);
    }
    if (m.id !== undefined && this._pending.has(m.id)) this._settle(m);
  }

  _typed(m) {
    const t = m.data && typeof m.data === "object" ? m.data.type : undefined;
    if (typeof t === "string" && !["message", "result", "state", "connect", "disconnect", "reconnect", "error", "gap"].includes(t)) {
      this._emit(t, m.data, m);
    }
  }

  _call(fn, m) {
    try {
      fn(m);
    } catch (err) {
      this._emit("error", err);
    }
  }

  _settle(m) {
    const p = this._pending.get(m.id);
    if (p.kind === "event" && m.type === "ack") {
      // a checkpointing pipeline acknowledges; a result may follow or not
      p.acked = true;
      if (!p.wantResult) {
        this._done(m.id);
        p.resolve(m);
      }
      return;
    }
    this._done(m.id);
    if (m.type === "error") p.reject(new StreamdError(m.code, m.message));
    else p.resolve(m);
  }

  _done(id) {
    const p = this._pending.get(id);
    clearTimeout(p.timer);
    this._pending.delete(id);
  }

  _welcome(m) {
    const first = !this._everConnected;
    this._everConnected = true;
    this._attempt = 0;
    this.session = m.session;
    const hb = this.opts.heartbeatInterval || m.heartbeat_ms || 25_000;
    this._startHeartbeat(hb, this.opts.deadAfter || 2 * hb);
    this._setState("connected");
    // Leaves in flight are done: the new connection is in no room.
    for (const [id, p] of this._pending) {
      if (p.kind === "leave") {
        this._done(id);
        p.resolve({ type: "left", room: p.frame.room });
      }
    }
    // Re-join every room (since the last seq seen; a join in flight is
    // sent again), then flush the queue.
    for (const [room, r] of this._rooms) {
      let p = [...this._pending.values()].find((q) => q.kind === "join" && q.frame.room === room);
      const f = p ? p.frame : { type: "join", room, id: this._id() };
      if (r.last > 0 || r.wasJoined) f.since = r.last;
      if (p) {
        if (this._write(f)) p.sent = true;
      } else {
        this._request(f, "join", false).catch((err) => this._emit("error", err));
      }
    }
    this._flush();
    this._paused = false; // a new connection starts unpaused
    if (first) this._onFirstWelcome?.(m);
    this._emit("connect", { session: m.session, reconnected: !first });
  }

  _startHeartbeat(every, deadAfter) {
    this._stopHeartbeat();
    this._hb = setInterval(() => this._write({ type: "ping" }), Math.max(10, every));
    this._dead = setInterval(() => {
      if (this._ws && Date.now() - this._lastSeen > deadAfter) {
        this.deadSilence = Date.now() - this._lastSeen; // for tests and logs
        this._lost(4000, "no frame for " + deadAfter + " ms");
      }
    }, Math.max(10, deadAfter / 16));
  }

  _stopHeartbeat() {
    if (this._hb) clearInterval(this._hb);
    if (this._dead) clearInterval(this._dead);
    this._hb = this._dead = null;
  }

  // ---- frames out

  _id() {
    return "c" + this._nextId++;
  }

  _write(f) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(this.opts.encoding === "msgpack" ? mpEncode(f) : JSON.stringify(f));
    return true;
  }

  // _request sends f (or queues it while disconnected) and resolves with
  // its answer. resend: it goes again after a reconnect.
  _request(f, kind, resend, wantResult = false) {
    return new Promise((resolve, reject) => {
      const p = { frame: f, kind, resend, resolve, reject, sent: false, order: this._nextId, wantResult };
      p.timer = this._after(this.opts.requestTimeout, () => {
        if (!this._pending.has(f.id)) return;
        this._pending.delete(f.id);
        this._queue = this._queue.filter((id) => id !== f.id);
        reject(new StreamdError("timeout", `no answer to ${f.type} in ${this.opts.requestTimeout} ms`));
      });
      if (this.state === "connected" && !(resend && this._paused) && this._queue.length === 0 && this._write(f)) {
        p.sent = true;
        this._pending.set(f.id, p);
        return;
      }
      if (!resend) {
        // joins and leaves are not queued: the room table redoes them
        this._pending.set(f.id, p);
        if (this.state === "connected" && this._write(f)) p.sent = true;
        return;
      }
      if (this._queue.length >= this.opts.queueSize) {
        switch (this.opts.queueOverflow) {
          case "drop-newest":
            clearTimeout(p.timer);
            reject(new StreamdError("queue_full", "dropped (drop-newest)"));
            return;
          case "drop-oldest": {
            const old = this._queue.shift();
            const op = this._pending.get(old);
            if (op) {
              this._done(old);
              op.reject(new StreamdError("queue_full", "dropped (drop-oldest)"));
            }
            break;
          }
          default:
            clearTimeout(p.timer);
            reject(new StreamdError("queue_full", `the offline queue holds ${this.opts.queueSize} requests`));
            return;
        }
      }
      this._pending.set(f.id, p);
      this._queue.push(f.id);
      if (this.state === "connected") this._flush();
    });
  }

  _flush() {
    while (this._queue.length > 0 && this.state === "connected" && !this._paused) {
      const id = this._queue[0];
      const p = this._pending.get(id);
      if (p && !this._write(p.frame)) return;
      if (p) p.sent = true;
      this._queue.shift();
    }
  }

  // ---- the API

  /** join subscribes to room; handler gets each message once, in seq order. */
  join(room, handler, { since } = {}) {
    const r = this._rooms.get(room) ?? { last: 0, wasJoined: false };
    r.handler = handler;
    if (since !== undefined) r.last = since;
    this._rooms.set(room, r);
    const f = { type: "join", room, id: this._id() };
    if (since !== undefined) f.since = since;
    return this._request(f, "join", false);
  }

  /** leave unsubscribes from room. */
  leave(room) {
    this._rooms.delete(room);
    return this._request({ type: "leave", room, id: this._id() }, "leave", false);
  }

  /** publish sends data into room; it resolves with the seq once acked. */
  async publish(room, data) {
    const f = { type: "publish", room, data, id: this._id(), producer: this.producer, pseq: ++this._pseq };
    const ack = await this._request(f, "publish", true);
    return ack.seq;
  }

  /** send hands an event to the pipelines reading stream; it resolves
   * with the first result (or the ack of a checkpointing pipeline). */
  async send(stream, data, { result = false } = {}) {
    const f = { type: "event", stream, data, id: this._id(), producer: this.producer, pseq: ++this._pseq };
    const m = await this._request(f, "event", true, result);
    return m.type === "result" ? m.data : m;
  }

  /** ack records that the user has processed room up to seq (durable rooms). */
  ack(room, seq) {
    return this._write({ type: "ack", room, seq });
  }

  /** queued is the number of requests waiting for a connection. */
  get queued() {
    return this._queue.length;
  }
}

/** backoff is the delay before reconnect attempt n (1, 2, …). */
export function backoff(o, n, rand = Math.random) {
  const base = Math.min(o.maxReconnectInterval, o.reconnectInterval * 2 ** Math.min(n - 1, 30));
  const j = o.jitter > 0 ? 1 + o.jitter * (2 * rand() - 1) : 1;
  return Math.max(0, Math.round(base * j));
}

function randomId() {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// ---- a minimal msgpack codec (nil, bool, int, float64, str, bin, array, map)

export function mpEncode(value) {
  const out = [];
  const u8 = (...b) => {
    for (const x of b) out.push(x & 0xff);
  };
  const be = (n, bytes) => {
    for (let i = bytes - 1; i >= 0; i--) out.push(Math.floor(n / 2 ** (8 * i)) & 0xff);
  };
  const len = (n, fix, fixMax, c8, c16, c32) => {
    if (n <= fixMax) u8(fix | n);
    else if (c8 !== null && n < 0x100) {
      u8(c8);
      be(n, 1);
    } else if (n < 0x10000) {
      u8(c16);
      be(n, 2);
    } else {
      u8(c32);
      be(n, 4);
    }
  };
  const f64 = (v) => {
    const dv = new DataView(new ArrayBuffer(8));
    dv.setFloat64(0, v);
    for (let i = 0; i < 8; i++) out.push(dv.getUint8(i));
  };
  const enc = (v) => {
    if (v === null || v === undefined) u8(0xc0);
    else if (v === false) u8(0xc2);
    else if (v === true) u8(0xc3);
    else if (typeof v === "number" && Number.isInteger(v) && Math.abs(v) <= 0xffffffff) {
      if (v >= 0 && v < 0x80) u8(v);
      else if (v >= 0 && v < 0x100) u8(0xcc, v);
      else if (v >= 0 && v < 0x10000) {
        u8(0xcd);
        be(v, 2);
      } else if (v >= 0) {
        u8(0xce);
        be(v, 4);
      } else if (v >= -32) u8(0xe0 | (v + 32));
      else if (v >= -0x80) u8(0xd0, v);
      else if (v >= -0x8000) {
        u8(0xd1);
        be(v + 0x10000, 2);
      } else if (v >= -0x80000000) {
        u8(0xd2);
        be(v + 0x100000000, 4);
      } else {
        u8(0xcb);
        f64(v);
      }
    } else if (typeof v === "number") {
      u8(0xcb);
      f64(v);
    } else if (typeof v === "string") {
      const b = textEnc.encode(v);
      len(b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      for (const x of b) out.push(x);
    } else if (v instanceof Uint8Array) {
      len(v.length, 0, -1, 0xc4, 0xc5, 0xc6);
      for (const x of v) out.push(x);
    } else if (Array.isArray(v)) {
      len(v.length, 0x90, 15, null, 0xdc, 0xdd);
      v.forEach(enc);
    } else if (typeof v === "object") {
      const keys = Object.keys(v).filter((k) => v[k] !== undefined);
      len(keys.length, 0x80, 15, null, 0xde, 0xdf);
      for (const k of keys) {
        enc(k);
        enc(v[k]);
      }
    } else throw new TypeError("streamd: msgpack cannot encode " + typeof v);
  };
  enc(value);
  return new Uint8Array(out);
}

export function mpDecode(buf) {
  const b = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 0;
  const need = (n) => {
    if (p + n > b.length) throw new Error("streamd: msgpack truncated at " + p);
  };
  const uint = (n) => {
    need(n);
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + b[p++];
    return v;
  };
  const str = (n) => {
    need(n);
    const s = textDec.decode(b.subarray(p, p + n));
    p += n;
    return s;
  };
  const bin = (n) => {
    need(n);
    const s = b.slice(p, p + n);
    p += n;
    return s;
  };
  const arr = (n) => {
    const a = [];
    for (let i = 0; i < n; i++) a.push(dec());
    return a;
  };
  const map = (n) => {
    const m = {};
    for (let i = 0; i < n; i++) {
      const k = dec();
      if (typeof k !== "string") throw new Error("streamd: msgpack map key is not a string");
      m[k] = dec();
    }
    return m;
  };
  const fixed = (n, get) => {
    need(n);
    const v = get(p);
    p += n;
    return v;
  };
  const dec = () => {
    need(1);
    const c = b[p++];
    if (c < 0x80) return c;
    if (c >= 0xe0) return c - 0x100;
    if ((c & 0xf0) === 0x80) return map(c & 0x0f);
    if ((c & 0xf0) === 0x90) return arr(c & 0x0f);
    if ((c & 0xe0) === 0xa0) return str(c & 0x1f);
    switch (c) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return bin(uint(1));
      case 0xc5:
        return bin(uint(2));
      case 0xc6:
        return bin(uint(4));
      case 0xca:
        return fixed(4, (q) => dv.getFloat32(q));
      case 0xcb:
        return fixed(8, (q) => dv.getFloat64(q));
      case 0xcc:
        return uint(1);
      case 0xcd:
        return uint(2);
      case 0xce:
        return uint(4);
      case 0xcf:
        return fixed(8, (q) => Number(dv.getBigUint64(q)));
      case 0xd0:
        return fixed(1, (q) => dv.getInt8(q));
      case 0xd1:
        return fixed(2, (q) => dv.getInt16(q));
      case 0xd2:
        return fixed(4, (q) => dv.getInt32(q));
      case 0xd3:
        return fixed(8, (q) => Number(dv.getBigInt64(q)));
      case 0xd9:
        return str(uint(1));
      case 0xda:
        return str(uint(2));
      case 0xdb:
        return str(uint(4));
      case 0xdc:
        return arr(uint(2));
      case 0xdd:
        return arr(uint(4));
      case 0xde:
        return map(uint(2));
      case 0xdf:
        return map(uint(4));
    }
    throw new Error("streamd: msgpack type byte 0x" + c.toString(16) + " is not supported");
  };
  const v = dec();
  if (p !== b.length) throw new Error("streamd: msgpack has " + (b.length - p) + " trailing bytes");
  return v;
}
