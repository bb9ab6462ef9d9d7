// client.mjs: streamd wire protocol v1 spoken by Node's `ws` package.
//
//   node client.mjs URL ROOM [ROLE]
//
// URL is the engine's endpoint (ws://HOST:PORT/ws), ROOM a fresh room.
// ROLE is "with-go" (the default: e2e.TestNodeWS) or "solo" (no Go side; handy
// by hand against `streamd serve`).
//
// Two clients connect: "deflate" negotiates permessage-deflate and compresses
// every frame it sends (threshold 0), "plain" negotiates no extension. Both
// join ROOM; the script then prints READY on stdout. Each client publishes
// one text (JSON) message and, once that is acked, one binary (msgpack)
// message. In role with-go the Go test publishes GO_DATA into ROOM after
// READY. Every client must receive every message (4, plus GO_DATA in role
// with-go) with the data that was sent, with seq increasing by one, both
// clients seeing the same seq for the same message, and an ack with that seq
// for each of its publishes. The bytes on the sockets show the deflate
// client's frames were compressed both ways and the plain client's were not.
// Exit status 0 means all of that held; anything else prints why on stderr
// and exits 1, at the latest after a 15 s overall timeout.
//
// Keep payload() and GO_DATA in step with e2e/node_test.go.
import WebSocket from "ws";
import { encode, decode } from "@msgpack/msgpack";
import { isDeepStrictEqual, inspect } from "node:util";

const TIMEOUT_MS = 15_000;

const [url, room, role = "with-go"] = process.argv.slice(2);
if (!url || !room || !["with-go", "solo"].includes(role)) {
  console.error("usage: node client.mjs ws://HOST:PORT/ws ROOM [with-go|solo]");
  process.exit(2);
}

const fail = (msg) => {
  console.error(`client.mjs: FAIL: ${msg}`);
  process.exit(1);
};
const timer = setTimeout(() => fail(`timed out after ${TIMEOUT_MS} ms`), TIMEOUT_MS);
process.on("unhandledRejection", (err) => fail(err?.stack ?? String(err)));

// payload is the data client `name` publishes in encoding `kind` ("text" or
// "binary"). The padding makes each message long and compressible, so the
// engine (threshold 128 B by default) compresses what it sends to "deflate".
export function payload(name, kind) {
  return {
    from: name,
    kind,
    text: `héllo from ${name} ✓ 🚀`,
    n: kind === "text" ? 1 : 2,
    neg: -7,
    big: 1099511627776, // 2^40: a 64-bit integer in msgpack
    f: 1.5,
    ok: true,
    nil: null,
    list: [1, "two", [3], { four: 4 }],
    pad: "streamd ".repeat(256),
  };
}

// GO_DATA is what the Go test publishes after READY (role with-go).
export const GO_DATA = { from: "go", text: "hello from Go ✓", n: 42, pad: "go ".repeat(100) };

class Client {
  constructor(name, deflate) {
    this.name = name;
    this.deflate = deflate;
    this.inbox = []; // decoded frames not yet taken
    this.waiters = [];
    this.messages = []; // {seq, data, binary}
    this.rawIn = 0; // decoded message bytes received
    this.rawOut = 0; // message bytes sent, before compression
  }

  async open() {
    this.ws = new WebSocket(url, {
      perMessageDeflate: this.deflate ? { threshold: 0 } : false,
      handshakeTimeout: 5_000,
    });
    this.ws.on("message", (buf, isBinary) => {
      this.rawIn += buf.length;
      let m;
      try {
        m = isBinary ? decode(buf) : JSON.parse(buf.toString("utf8"));
      } catch (err) {
        fail(`${this.name}: undecodable ${isBinary ? "binary" : "text"} frame: ${err}`);
      }
      if (m === null || typeof m !== "object" || Array.isArray(m)) {
        fail(`${this.name}: frame is not a map: ${inspect(m)}`);
      }
      m.__binary = isBinary;
      if (m.type === "error") fail(`${this.name}: server error: ${inspect(m)}`);
      if (m.type === "message") this.messages.push(m);
      this.inbox.push(m);
      this.wake();
    });
    this.ws.on("error", (err) => fail(`${this.name}: socket error: ${err.message}`));
    this.ws.on("close", (code, reason) => {
      if (!this.closing) fail(`${this.name}: server closed the connection: ${code} ${reason}`);
    });
    await new Promise((resolve) => this.ws.once("open", resolve));
    const ext = this.ws.extensions;
    if (this.deflate !== ext.includes("permessage-deflate")) {
      fail(`${this.name}: negotiated extensions ${JSON.stringify(ext)}, deflate wanted: ${this.deflate}`);
    }
    const w = await this.next((m) => m.type !== "message");
    if (w.type !== "welcome" || typeof w.session === "undefined" || typeof w.heartbeat_ms !== "number") {
      fail(`${this.name}: first frame ${inspect(w)}, want a welcome`);
    }
    if (w.__binary) fail(`${this.name}: welcome came in a binary frame before any client frame`);
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  // next resolves with the first unread frame that fits pred (messages stay
  // in this.messages whether or not they are taken here).
  async next(pred) {
    for (;;) {
      const i = this.inbox.findIndex(pred);
      if (i >= 0) return this.inbox.splice(i, 1)[0];
      await new Promise((resolve) => this.waiters.push(resolve));
    }
  }

  async until(cond) {
    while (!cond()) await new Promise((resolve) => this.waiters.push(resolve));
  }

  sendText(obj) {
    const s = JSON.stringify(obj);
    this.rawOut += Buffer.byteLength(s);
    this.ws.send(s, { binary: false });
  }

  sendBinary(obj) {
    const b = encode(obj);
    this.rawOut += b.length;
    this.ws.send(b, { binary: true });
  }
}

const clients = [new Client("deflate", true), new Client("plain", false)];
await Promise.all(clients.map((c) => c.open()));

for (const c of clients) {
  c.sendText({ type: "join", room, id: `join-${c.name}` });
  const j = await c.next((m) => m.type === "joined");
  if (j.room !== room || j.id !== `join-${c.name}` || typeof j.seq !== "number") {
    fail(`${c.name}: joined = ${inspect(j)}`);
  }
}
console.log("READY");

// Each client publishes in JSON, waits for the ack, then publishes in msgpack.
// (Without the wait the ack of the JSON publish can be answered after the
// switch to msgpack: an engine bug that e2e.TestEncodingSwitchAnswerID pins
// down on its own.)
const acks = new Map(); // id -> ack
await Promise.all(clients.map(async (c) => {
  c.sendText({ type: "publish", room, id: `${c.name}-text`, data: payload(c.name, "text") });
  acks.set(`${c.name}-text`, await c.next((m) => m.type === "ack" && m.id === `${c.name}-text`));
  c.sendBinary({ type: "publish", room, id: `${c.name}-binary`, data: payload(c.name, "binary") });
  acks.set(`${c.name}-binary`, await c.next((m) => m.type === "ack" && m.id === `${c.name}-binary`));
}));

const want = [];
for (const c of clients) for (const kind of ["text", "binary"]) want.push(payload(c.name, kind));
if (role === "with-go") want.push(GO_DATA);

const key = (d) => (d && typeof d === "object" ? `${d.from}/${d.kind ?? ""}` : inspect(d));
await Promise.all(clients.map((c) => c.until(() => c.messages.length >= want.length)));
// Acks: each publish with an id is answered with an ack carrying that id
// and the seq its message got.
for (const [id, a] of acks) {
  const [name, kind] = id.split("-");
  const c = clients.find((x) => x.name === name);
  const m = c.messages.find((x) => x.data?.from === name && x.data?.kind === kind);
  if (!m || a.seq !== m.seq || a.room !== room) fail(`${id}: ack ${inspect(a)} for message ${inspect(m?.seq)}`);
}

const seqOf = new Map(); // key -> seq, shared by both clients
for (const c of clients) {
  if (c.messages.length !== want.length) {
    fail(`${c.name}: got ${c.messages.length} messages, want ${want.length}: ${inspect(c.messages, { depth: 4 })}`);
  }
  let prev = -1;
  const seen = new Set();
  for (const m of c.messages) {
    if (m.room !== room) fail(`${c.name}: message for room ${inspect(m.room)}, want ${room}`);
    if (typeof m.seq !== "number" || m.seq <= prev) fail(`${c.name}: seq ${m.seq} after ${prev}`);
    if (prev >= 0 && m.seq !== prev + 1) fail(`${c.name}: seq ${m.seq} after ${prev}: a gap`);
    prev = m.seq;
    const k = key(m.data);
    const exp = want.find((w) => key(w) === k);
    if (!exp) fail(`${c.name}: unexpected message data ${inspect(m.data, { depth: 4 })}`);
    if (!isDeepStrictEqual(m.data, exp)) {
      fail(`${c.name}: message ${k} data ${inspect(m.data, { depth: 4 })}, want ${inspect(exp, { depth: 4 })}`);
    }
    if (seen.has(k)) fail(`${c.name}: message ${k} delivered twice`);
    seen.add(k);
    if (seqOf.has(k) && seqOf.get(k) !== m.seq) {
      fail(`${c.name}: message ${k} has seq ${m.seq}, the other client saw ${seqOf.get(k)}`);
    }
    seqOf.set(k, m.seq);
    // The server answers in the encoding the client last used: once it has
    // read this client's binary publish, everything after comes in msgpack.
    if (m.data.from === c.name && m.data.kind === "binary" && !m.__binary) {
      fail(`${c.name}: the echo of its own binary publish came in a text frame`);
    }
  }
}

// Compression really happened on "deflate" and not on "plain". The socket
// byte counts include the HTTP upgrade (a few hundred bytes) and the frame
// headers; the payloads are several kB of highly repetitive text.
for (const c of clients) {
  const sock = c.ws._socket;
  if (!sock) fail(`${c.name}: no underlying socket to measure`);
  const { bytesRead, bytesWritten } = sock;
  if (c.deflate) {
    if (bytesRead * 2 > c.rawIn) fail(`${c.name}: read ${bytesRead} socket bytes for ${c.rawIn} message bytes: not compressed`);
    if (bytesWritten * 2 > c.rawOut) fail(`${c.name}: wrote ${bytesWritten} socket bytes for ${c.rawOut} message bytes: not compressed`);
  } else {
    if (bytesRead < c.rawIn) fail(`${c.name}: read ${bytesRead} socket bytes for ${c.rawIn} message bytes without deflate`);
    if (bytesWritten < c.rawOut) fail(`${c.name}: wrote ${bytesWritten} socket bytes for ${c.rawOut} message bytes without deflate`);
  }
  console.log(`${c.name}: ${c.messages.length} messages, seq ${c.messages[0].seq}..${c.messages.at(-1).seq}; ` +
    `in ${c.rawIn} B as ${bytesRead} B on the wire, out ${c.rawOut} B as ${bytesWritten} B`);
}

for (const c of clients) {
  c.closing = true;
  c.ws.close(1000, "done");
}
await Promise.all(clients.map((c) => new Promise((resolve) => {
  if (c.ws.readyState === WebSocket.CLOSED) resolve();
  else c.ws.once("close", resolve);
})));
clearTimeout(timer);
console.log("OK");
