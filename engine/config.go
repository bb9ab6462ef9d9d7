package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"runtime"
	"time"

	"streamd/alerts"
	"streamd/netpoll"
	"streamd/pipeline"
)

// Execution modes (Config.Mode).
const (
	// ModeAuto picks ModeInline when the process may use one CPU, else
	// ModeRings.
	ModeAuto = "auto"
	// ModeInline runs everything on one event loop: the loop that decodes a
	// message also runs its room's work. No handoff, no ring.
	ModeInline = "inline"
	// ModeRings runs Loops event loops and Workers shard workers, joined by
	// one SPSC ring per (loop, worker) pair in each direction.
	ModeRings = "rings"
)

// RoomPolicy is the policy of the rooms whose name matches Match (a
// path.Match glob; "*" matches every room). The first matching policy wins.
type RoomPolicy struct {
	Match string `yaml:"match" json:"match"`
	// History is how many recent messages the room keeps in memory for
	// `join … since`. 0 means the engine's DefaultHistory; -1 keeps none.
	History int `yaml:"history" json:"history"`
	// Durable appends every message to the room's log in the state store
	// (Config.Data) before it is delivered and acknowledged, and serves
	// `join … since` from the log when memory does not reach back far
	// enough (docs/durability.md).
	Durable bool `yaml:"durable" json:"durable"`
	// LogMaxCount, LogMaxAge and LogMaxBytes bound a durable room's log
	// (0: no bound); the oldest entries go first, checked every 10s.
	LogMaxCount int           `yaml:"log_max_count" json:"log_max_count"`
	LogMaxAge   time.Duration `yaml:"log_max_age" json:"log_max_age"`
	LogMaxBytes int64         `yaml:"log_max_bytes" json:"log_max_bytes"`
	// Presence turns on presence for the room: user_joined / user_left
	// notices to its members, and `presence` / `presence_stats` queries
	// (docs/presence.md).
	Presence bool `yaml:"presence" json:"presence"`
	// Backpressure is what gives way when a member's connection does not
	// keep up (docs/backpressure.md): "disconnect", "drop-newest",
	// "drop-oldest", "keep-latest" (by ConflateKey) or "sample". Default
	// "": none — a member is written to until write_buffer_limit, then
	// dropped.
	Backpressure string `yaml:"backpressure" json:"backpressure"`
	// MaxPending bounds the messages held for one lagging member. Default 1000.
	MaxPending int `yaml:"max_pending" json:"max_pending"`
	// LagBytes is the unread bytes after which a member is lagging.
	// Default 256 KiB (at most half of write_buffer_limit).
	LagBytes int `yaml:"lag_bytes" json:"lag_bytes"`
	// ConflateKey is keep-latest's key: a top-level field of the data.
	ConflateKey string `yaml:"conflate_key" json:"conflate_key"`
	// SampleEvery: sample keeps one message in SampleEvery while lagging.
	// Default 10.
	SampleEvery int `yaml:"sample_every" json:"sample_every"`
}

// Config configures an Engine. Every field is optional; the zero value of a
// field means the default its comment names. New calls EnsureDefaults and
// Validate.
type Config struct {
	// Listen is the WebSocket listen address. Default "127.0.0.1:8080".
	Listen string `yaml:"listen" json:"listen"`
	// Path is the WebSocket endpoint. Default "/ws".
	Path string `yaml:"path" json:"path"`
	// Mode is ModeAuto (default), ModeInline or ModeRings.
	Mode string `yaml:"mode" json:"mode"`
	// Loops is the number of event loops in ModeRings. Default GOMAXPROCS.
	Loops int `yaml:"loops" json:"loops"`
	// Workers is the number of shard workers in ModeRings. Default GOMAXPROCS.
	Workers int `yaml:"workers" json:"workers"`
	// RingSize is the capacity of each loop↔worker ring. Default 4096.
	RingSize int `yaml:"ring_size" json:"ring_size"`
	// DisablePin leaves loops and workers unpinned. Default false: each loop
	// and worker is locked to an OS thread pinned to one CPU of the
	// process's affinity mask (sched_setaffinity), where the OS allows it.
	DisablePin bool `yaml:"disable_pin" json:"disable_pin"`
	// MaxConnections caps open connections. Default 100,000.
	MaxConnections int `yaml:"max_connections" json:"max_connections"`
	// MaxMessageSize caps one WebSocket message in bytes (close 1009).
	// Default 1 MiB.
	MaxMessageSize int `yaml:"max_message_size" json:"max_message_size"`
	// MaxRoomName caps a room name in bytes. Default 256.
	MaxRoomName int `yaml:"max_room_name" json:"max_room_name"`
	// MaxRooms caps the number of rooms that exist at once. Default 1,000,000.
	MaxRooms int `yaml:"max_rooms" json:"max_rooms"`
	// MaxConnectionsPerIP caps the open connections from one remote IP;
	// extra upgrades get HTTP 429. Default 0: no cap.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip" json:"max_connections_per_ip"`
	// AllowedOrigins lists the Origin headers a WebSocket upgrade may
	// carry (path.Match globs: "https://app.example.com",
	// "https://*.example.com"); an upgrade with another Origin gets HTTP
	// 403. Clients that send no Origin (not browsers) are not affected.
	// Default none: every origin is allowed.
	AllowedOrigins []string `yaml:"allowed_origins" json:"allowed_origins"`
	// MaxMessagesPerSecond caps the messages one connection may send per
	// second (a token bucket with a one-second burst); over it, messages
	// are dropped and answered `rate_limited` (at most once a second).
	// Default 0: no limit.
	MaxMessagesPerSecond float64 `yaml:"max_messages_per_second" json:"max_messages_per_second"`
	// MaxBytesPerSecond caps the message bytes one connection may send per
	// second, the same way. Default 0: no limit.
	MaxBytesPerSecond int64 `yaml:"max_bytes_per_second" json:"max_bytes_per_second"`
	// RateLimitOverflow is what happens to a message over those limits:
	// "drop" (default: dropped, answered rate_limited) or "block": the
	// message waits for tokens and the connection's frames are handled
	// no further meanwhile; nothing is lost. A producer that sends past
	// netpoll's paused-read limit (2 × max_message_size) is closed, 1008.
	RateLimitOverflow string `yaml:"rate_limit_overflow" json:"rate_limit_overflow"`
	// FlowControl tells a producer to pause before it reaches its rate
	// limit and to resume when it may send again ({"type":"flow",…};
	// the Go and browser clients honour it). Default false.
	FlowControl bool `yaml:"flow_control" json:"flow_control"`
	// MaxRoomsPerConn caps the rooms one connection may join. Default 1,000.
	MaxRoomsPerConn int `yaml:"max_rooms_per_conn" json:"max_rooms_per_conn"`
	// DefaultHistory is the history length of rooms no policy sets. Default 100.
	DefaultHistory int `yaml:"default_history" json:"default_history"`
	// HeartbeatInterval: the welcome's heartbeat_ms, and the silence after
	// which the server pings. Default 25s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval" json:"heartbeat_interval"`
	// IdleTimeout: silence after which a connection is closed as dead.
	// Default 2×HeartbeatInterval + 5s.
	IdleTimeout time.Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// HandshakeTimeout bounds the HTTP upgrade. Default 5s.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout" json:"handshake_timeout"`
	// WriteBufferLimit: bytes queued for a connection that does not read
	// before it is dropped. Default 4 MiB.
	WriteBufferLimit int `yaml:"write_buffer_limit" json:"write_buffer_limit"`
	// SocketSendBuffer sets the kernel send buffer (SO_SNDBUF) of client
	// connections, in bytes. Smaller buffers make backpressure policies
	// see a slow reader sooner (docs/backpressure.md). Default 0: the
	// system's (autotuned, often up to 4 MiB).
	SocketSendBuffer int `yaml:"socket_send_buffer" json:"socket_send_buffer"`
	// DisableCompression turns permessage-deflate off. Default false.
	DisableCompression bool `yaml:"disable_compression" json:"disable_compression"`
	// CompressionClientTakeover lets clients that ask for it compress with
	// context takeover (the server then keeps a 32 KiB window per such
	// connection). Default false: every client is told
	// client_no_context_takeover.
	CompressionClientTakeover bool `yaml:"compression_client_takeover" json:"compression_client_takeover"`
	// CompressionThreshold: messages shorter than this go uncompressed.
	// Default 128 bytes.
	CompressionThreshold int `yaml:"compression_threshold" json:"compression_threshold"`
	// PresenceGrace: after a member's connection drops, how long its
	// user may take to re-join before the others are told it left (a
	// quick reconnect produces no leave/join pair). Default 5s.
	PresenceGrace time.Duration `yaml:"presence_grace" json:"presence_grace"`
	// PresenceCoalesceAbove: in a presence room with more members than
	// this, joins and leaves are no longer announced one by one but as
	// counts in one presence_batch notice per PresenceCoalesceInterval.
	// Default 1000.
	PresenceCoalesceAbove int `yaml:"presence_coalesce_above" json:"presence_coalesce_above"`
	// PresenceCoalesceInterval is the period of presence_batch notices.
	// Default 1s.
	PresenceCoalesceInterval time.Duration `yaml:"presence_coalesce_interval" json:"presence_coalesce_interval"`
	// Data is the state store's directory (durable room logs); "" keeps
	// it in memory (nothing survives a restart). Set by `streamd serve
	// --data`. The store is opened only when some room is durable.
	Data string `yaml:"-" json:"data"`
	// Metrics is "full" (default: stage latency histograms, a few clock
	// reads per message) or "minimal" (counters only).
	Metrics string `yaml:"metrics" json:"metrics"`
	// MetricsInterval is how often a snapshot is taken, published into
	// the room "$sys.metrics" and checked against Alerts. Default 1s;
	// negative turns snapshots (and alerts) off.
	MetricsInterval time.Duration `yaml:"metrics_interval" json:"metrics_interval"`
	// Alerts are alert rules on the metrics snapshot (docs/observability.md),
	// evaluated every MetricsInterval; notifications go to the log, to
	// RoomAlerts ("$sys.alerts") and to AlertWebhooks.
	Alerts []alerts.Rule `yaml:"alerts" json:"alerts"`
	// AlertWebhooks receive every alert notification as a JSON POST.
	AlertWebhooks []alerts.WebhookOptions `yaml:"alert_webhooks" json:"alert_webhooks"`
	// Rooms are the per-room policies; the first whose Match fits wins.
	Rooms []RoomPolicy `yaml:"rooms" json:"rooms"`
	// Auth says who may connect and how tokens are verified
	// (docs/security.md). Default: nobody — set Auth.Anonymous for open
	// access, or a JWT key.
	Auth AuthConfig `yaml:"auth" json:"auth"`
	// Permissions are the per-room access rules (docs/security.md); the
	// first whose Match fits a room decides. None: every connection may
	// join, publish and read history in every room but $sys.*.
	Permissions []PermissionRule `yaml:"permissions" json:"permissions"`
	// Pipelines are the config pipelines (docs/pipelines.md), started
	// with the engine and replaced by ReloadPipelines.
	Pipelines []pipeline.Spec `yaml:"pipelines" json:"-"`
	// PipelineWorkers is the number of goroutines that run pipelines;
	// each pipeline runs on one, chosen by its name. Default 1.
	PipelineWorkers int `yaml:"pipeline_workers" json:"pipeline_workers"`
	// TLS adds a wss:// listener (TLSConfig); absent: plain ws:// only.
	TLS TLSConfig `yaml:"tls" json:"tls"`
	// Logger receives the engine's logs. Default slog.Default().
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// EnsureDefaults fills every zero field with its default.
func (c *Config) EnsureDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Path == "" {
		c.Path = "/ws"
	}
	if c.Mode == "" {
		c.Mode = ModeAuto
	}
	if c.Mode == ModeAuto {
		if runtime.GOMAXPROCS(0) == 1 {
			c.Mode = ModeInline
		} else {
			c.Mode = ModeRings
		}
	}
	if c.Mode == ModeInline {
		c.Loops, c.Workers = 1, 0
	}
	if c.Mode == ModeRings {
		if c.Loops == 0 {
			c.Loops = runtime.GOMAXPROCS(0)
		}
		if c.Workers == 0 {
			c.Workers = runtime.GOMAXPROCS(0)
		}
	}
	if c.PipelineWorkers == 0 {
		c.PipelineWorkers = 1
	}
	if c.Metrics == "" {
		c.Metrics = MetricsFull
	}
	if c.MetricsInterval == 0 {
		c.MetricsInterval = time.Second
	}
	if c.PresenceGrace == 0 {
		c.PresenceGrace = 5 * time.Second
	}
	if c.PresenceCoalesceAbove == 0 {
		c.PresenceCoalesceAbove = 1000
	}
	if c.PresenceCoalesceInterval == 0 {
		c.PresenceCoalesceInterval = time.Second
	}
	if c.RingSize == 0 {
		c.RingSize = 4096
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 100_000
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 1 << 20
	}
	if c.MaxRoomName == 0 {
		c.MaxRoomName = 256
	}
	if c.MaxRooms == 0 {
		c.MaxRooms = 1_000_000
	}
	if c.MaxRoomsPerConn == 0 {
		c.MaxRoomsPerConn = 1000
	}
	if c.DefaultHistory == 0 {
		c.DefaultHistory = 100
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 25 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 2*c.HeartbeatInterval + 5*time.Second
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.WriteBufferLimit == 0 {
		c.WriteBufferLimit = 4 << 20
	}
	if c.CompressionThreshold == 0 {
		c.CompressionThreshold = 128
	}
	c.TLS.ensureDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Auth.ensureDefaults()
}

// Validate reports every setting that cannot work, naming each.
func (c *Config) Validate() error {
	var errs []error
	switch c.Mode {
	case ModeInline, ModeRings:
	default:
		errs = append(errs, fmt.Errorf("engine: mode %q: want auto, inline or rings", c.Mode))
	}
	if c.Mode == ModeRings && (c.Loops < 1 || c.Workers < 1) {
		errs = append(errs, fmt.Errorf("engine: loops = %d, workers = %d: rings mode needs at least 1 of each", c.Loops, c.Workers))
	}
	if c.RingSize < 2 || c.RingSize > 1<<20 {
		errs = append(errs, fmt.Errorf("engine: ring_size = %d: want 2..1048576", c.RingSize))
	}
	if c.MaxRoomName < 1 || c.MaxRoomName > 4096 {
		errs = append(errs, fmt.Errorf("engine: max_room_name = %d: want 1..4096", c.MaxRoomName))
	}
	if c.MaxRooms < 1 {
		errs = append(errs, fmt.Errorf("engine: max_rooms = %d: want at least 1", c.MaxRooms))
	}
	if c.MaxRoomsPerConn < 1 {
		errs = append(errs, fmt.Errorf("engine: max_rooms_per_conn = %d: want at least 1", c.MaxRoomsPerConn))
	}
	if c.DefaultHistory < -1 || c.DefaultHistory > 1<<20 {
		errs = append(errs, fmt.Errorf("engine: default_history = %d: want -1..1048576", c.DefaultHistory))
	}
	for i, p := range c.Rooms {
		if p.Match == "" {
			errs = append(errs, fmt.Errorf("engine: rooms[%d].match is empty: use \"*\" for every room", i))
		} else if _, err := path.Match(p.Match, ""); err != nil {
			errs = append(errs, fmt.Errorf("engine: rooms[%d].match %q: %v", i, p.Match, err))
		}
		if p.History < -1 || p.History > 1<<20 {
			errs = append(errs, fmt.Errorf("engine: rooms[%d].history = %d: want -1..1048576", i, p.History))
		}
	}
	if c.Metrics != MetricsFull && c.Metrics != MetricsMinimal {
		errs = append(errs, fmt.Errorf("engine: metrics %q: want full or minimal", c.Metrics))
	}
	if c.MetricsInterval > 0 && c.MetricsInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("engine: metrics_interval = %v: want ≥ 10ms (or negative for off)", c.MetricsInterval))
	}
	for i, o := range c.AllowedOrigins {
		if _, err := path.Match(o, ""); err != nil || o == "" {
			errs = append(errs, fmt.Errorf("engine: allowed_origins[%d] %q: want an origin or a glob such as \"https://*.example.com\"", i, o))
		}
	}
	if c.MaxMessagesPerSecond < 0 || c.MaxBytesPerSecond < 0 {
		errs = append(errs, fmt.Errorf("engine: max_messages_per_second = %v, max_bytes_per_second = %d: want ≥ 0 (0: no limit)", c.MaxMessagesPerSecond, c.MaxBytesPerSecond))
	}
	switch c.RateLimitOverflow {
	case "", RateDrop, RateBlock:
	default:
		errs = append(errs, fmt.Errorf("engine: rate_limit_overflow %q: want drop or block", c.RateLimitOverflow))
	}
	if c.RateLimitOverflow == RateBlock && c.MaxBytesPerSecond > 0 && int64(c.MaxMessageSize) > c.MaxBytesPerSecond {
		errs = append(errs, fmt.Errorf("engine: rate_limit_overflow block with max_bytes_per_second %d below max_message_size %d: a larger message could never pass", c.MaxBytesPerSecond, c.MaxMessageSize))
	}
	if c.PresenceGrace < 0 {
		errs = append(errs, fmt.Errorf("engine: presence_grace = %v: want ≥ 0 (0 means 5s; a tiny value such as 1ms turns grace off)", c.PresenceGrace))
	}
	if c.PresenceCoalesceAbove < 0 {
		errs = append(errs, fmt.Errorf("engine: presence_coalesce_above = %d: want ≥ 0", c.PresenceCoalesceAbove))
	}
	if c.PresenceCoalesceInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("engine: presence_coalesce_interval = %v: want ≥ 10ms", c.PresenceCoalesceInterval))
	}
	errs = append(errs, c.validateAuth()...)
	errs = append(errs, c.validateBackpressure()...)
	errs = append(errs, c.TLS.validate(c.Listen)...)
	if err := c.validateAlerts(); err != nil {
		errs = append(errs, err)
	}
	if c.PipelineWorkers < 1 || c.PipelineWorkers > 256 {
		errs = append(errs, fmt.Errorf("engine: pipeline_workers = %d: want 1..256", c.PipelineWorkers))
	}
	if err := CheckPipelines(c.Pipelines); err != nil {
		errs = append(errs, err)
	}
	// The transport's own limits, named by their config keys.
	o := c.netpollOptions()
	if err := o.ValidateAs("engine", netpollKeys); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("engine: listen %q: %v (want HOST:PORT)", c.Listen, err))
	}
	return errors.Join(errs...)
}

// netpollKeys names netpoll's options by the config keys that set them.
var netpollKeys = map[string]string{
	"Loops": "loops", "MaxMessageSize": "max_message_size", "MaxConnections": "max_connections",
	"IdleTimeout": "idle_timeout", "HeartbeatInterval": "heartbeat_interval",
	"WriteBufferLimit": "write_buffer_limit", "Path": "path", "MaxConnectionsPerIP": "max_connections_per_ip",
}

func (c *Config) netpollOptions() netpoll.Options {
	o := netpoll.Options{
		Addr: c.Listen, Path: c.Path, Loops: c.Loops, Pin: !c.DisablePin,
		MaxConnections: c.MaxConnections, MaxMessageSize: c.MaxMessageSize,
		HandshakeTimeout: c.HandshakeTimeout, HeartbeatInterval: c.HeartbeatInterval,
		IdleTimeout: c.IdleTimeout, WriteBufferLimit: c.WriteBufferLimit, SocketSendBuffer: c.SocketSendBuffer,
		DisableCompression: c.DisableCompression, CompressionThreshold: c.CompressionThreshold,
		CompressionClientTakeover: c.CompressionClientTakeover,
		MeasureWrites:             c.Metrics == MetricsFull,
		MaxConnectionsPerIP:       c.MaxConnectionsPerIP,
		CheckOrigin:               originChecker(c.AllowedOrigins),
		Logger:                    c.Logger,
	}
	o.WriteBufferCap = c.writeBufferCap()
	o.EnsureDefaults()
	return o
}

// originChecker returns netpoll's CheckOrigin for a list of allowed
// origin globs (nil: every origin is allowed).
func originChecker(allowed []string) func(origin []byte) bool {
	if len(allowed) == 0 {
		return nil
	}
	pats := append([]string(nil), allowed...)
	return func(origin []byte) bool {
		o := string(origin)
		for _, p := range pats {
			if ok, _ := path.Match(p, o); ok {
				return true
			}
		}
		return false
	}
}

// presenceFor reports whether a room has presence on.
func (c *Config) presenceFor(name string) bool {
	for _, p := range c.Rooms {
		if ok, _ := path.Match(p.Match, name); ok {
			return p.Presence
		}
	}
	return false
}

// anyPresence reports whether some policy turns presence on.
func (c *Config) anyPresence() bool {
	for _, p := range c.Rooms {
		if p.Presence {
			return true
		}
	}
	return false
}

// historyFor returns the history length for a room name.
func (c *Config) historyFor(name string) int {
	for _, p := range c.Rooms {
		if ok, _ := path.Match(p.Match, name); ok {
			switch {
			case p.History == 0:
				return max(c.DefaultHistory, 0)
			case p.History < 0:
				return 0
			default:
				return p.History
			}
		}
	}
	return max(c.DefaultHistory, 0)
}
