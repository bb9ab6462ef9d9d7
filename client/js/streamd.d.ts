// Type definitions for streamd.js, the browser client of streamd's wire
// protocol v1 (served by streamd at /client.d.ts beside /client.js).

export interface Options {
  /** First reconnect delay in ms; doubles per attempt. Default 500. */
  reconnectInterval?: number;
  /** Cap of the reconnect delay in ms. Default 10000. */
  maxReconnectInterval?: number;
  /** Attempts before giving up (then state "closed"); 0: forever. Default 0. */
  maxReconnectAttempts?: number;
  /** ± share of each delay drawn at random (0..1). Default 0.2. */
  jitter?: number;
  /** Ping period in ms; 0: the welcome's heartbeat_ms. */
  heartbeatInterval?: number;
  /** Silence in ms after which the connection is dropped and redialled; 0: 2 × heartbeat. */
  deadAfter?: number;
  /** Requests held while disconnected. Default 1000. */
  queueSize?: number;
  /** What a full queue does with one more request. Default "error". */
  queueOverflow?: "drop-oldest" | "drop-newest" | "error";
  /** Wire encoding. Default "json". */
  encoding?: "json" | "msgpack";
  /** Producer id of this client's publishes and events; "": random. */
  producer?: string;
  /** A JWT, sent as the first message ({"type":"auth","token"}) on every connection. */
  token?: string;
  /** A request with no answer fails after this many ms. Default 30000. */
  requestTimeout?: number;
}

export type State = "idle" | "connecting" | "connected" | "reconnecting" | "closed";

/** A frame from the engine ({"type": …}); see the README's protocol table. */
export interface Frame {
  type: string;
  id?: unknown;
  room?: string;
  seq?: number;
  data?: unknown;
  [field: string]: unknown;
}

export interface RoomMessage extends Frame {
  type: "message";
  room: string;
  seq: number;
  data: unknown;
}

export interface Gap {
  room: string;
  /** The last seq this client had seen. */
  since: number;
  /** Re-join answered recovered:false: the room's seq then. */
  seq?: number;
  /** A gap notice (backpressure dropped these seqs for this client). */
  from?: number;
  to?: number;
}

export declare const defaults: Readonly<Required<Options>>;

export declare class StreamdError extends Error {
  /** The engine's error code ("forbidden", "rate_limited", …) or the client's
   * ("closed", "timeout", "queue_full", "reconnect_failed", "auth", "connection"). */
  code: string;
}

export declare class StreamdClient {
  constructor(url: string, options?: Options);
  readonly url: string;
  readonly producer: string;
  readonly state: State;
  /** The engine's session id of the current connection. */
  readonly session?: string;
  /** Requests waiting for a connection. */
  readonly queued: number;

  /** Opens the connection; resolves at the first welcome. */
  connect(): Promise<Frame>;
  /** Ends the client: no reconnect; pending calls fail with code "closed". */
  close(): void;

  on(type: "state", fn: (state: State) => void): () => void;
  on(type: "connect", fn: (info: { session: string; reconnected: boolean }) => void): () => void;
  on(type: "disconnect", fn: (info: { code: number; reason: string }) => void): () => void;
  on(type: "reconnect", fn: (info: { attempt: number; delay: number }) => void): () => void;
  on(type: "error", fn: (err: Error) => void): () => void;
  on(type: "gap", fn: (gap: Gap) => void): () => void;
  /** Flow control: "pause" holds publishes and events until "resume". */
  on(type: "flow", fn: (state: "pause" | "resume") => void): () => void;
  on(type: "message", fn: (m: RoomMessage) => void): () => void;
  /** Any other type: frames of that type, and room messages and results
   * whose data has that "type" (e.g. "agent_response"): fn(data, frame). */
  on(type: string, fn: (data: any, frame: Frame) => void): () => void;

  /** Subscribes to room; handler gets each message once, in seq order,
   * across reconnects. since: replay from there. Resolves with "joined". */
  join(room: string, handler?: (m: RoomMessage) => void, opts?: { since?: number }): Promise<Frame>;
  leave(room: string): Promise<Frame>;
  /** Publishes data into room (queued while disconnected; applied once);
   * resolves with the message's seq. */
  publish(room: string, data: unknown): Promise<number>;
  /** Sends an event to the pipelines reading stream; resolves with the
   * first result's data, or with the ack of a checkpointing pipeline
   * (unless opts.result: then it waits for a result). */
  send(stream: string, data: unknown, opts?: { result?: boolean }): Promise<unknown>;
  /** Records that this user processed room up to seq (durable rooms). */
  ack(room: string, seq: number): boolean;
}

export declare function backoff(o: Required<Options>, attempt: number, rand?: () => number): number;
export declare function mpEncode(value: unknown): Uint8Array;
export declare function mpDecode(buf: ArrayBuffer | Uint8Array): unknown;
