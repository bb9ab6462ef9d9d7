package aimodel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DocumentsOptions configures WatchDocuments.
type DocumentsOptions struct {
	// Dir is the directory read (not its subdirectories).
	Dir string
	// Pattern is a glob (filepath.Match) on file names. Default "*".
	Pattern string
	// Poll is how often the directory is listed again. Default 1s.
	Poll time.Duration
	// Settle is how old a file's modification time must be before it is
	// read, so a file still being written is not read half-way (write
	// files elsewhere and rename them in to be safe). Default 1s;
	// negative: read at once.
	Settle time.Duration
	// MaxSize skips (and logs) files larger than this. Default 16 MiB.
	MaxSize int64
	// Once reads what is there and returns, instead of polling.
	Once bool
	// Logger gets the files skipped. Default slog.Default().
	Logger *slog.Logger
}

// docSeen is what was read of one file.
type docSeen struct {
	size   int64
	mtime  time.Time
	offset int64 // JSON lines: bytes consumed
}

// WatchDocuments feeds emit the documents of a directory, in file-name
// order, then polls for new ones until ctx ends (or, with Once, returns).
// Each file is read once per version (name + size + modification time):
//
//   - *.jsonl, *.ndjson: one event per line (the line's JSON value);
//     when such a file grows, only the lines after what was read are
//     fed; bad lines are logged and skipped;
//   - *.json: one event, the file's JSON value;
//   - anything else (text, Markdown): one event
//     {"path": PATH, "name": NAME, "text": TEXT} (invalid UTF-8 replaced
//     by U+FFFD).
//
// A file that changes (another size or modification time) is read again
// (JSON lines: from where it was left, or from the start when it
// shrank). emit may block (backpressure); its error stops the watch and
// is returned.
func WatchDocuments(ctx context.Context, o DocumentsOptions, emit func(data []byte) error) error {
	if o.Pattern == "" {
		o.Pattern = "*"
	}
	if _, err := filepath.Match(o.Pattern, "x"); err != nil {
		return fmt.Errorf("documents: pattern %q: %w", o.Pattern, err)
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Settle == 0 {
		o.Settle = time.Second
	}
	if o.MaxSize <= 0 {
		o.MaxSize = 16 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	w := &docWatcher{o: o, seen: map[string]docSeen{}, emit: emit}
	t := time.NewTicker(o.Poll)
	defer t.Stop()
	for {
		if err := w.scan(ctx); err != nil {
			return err
		}
		if o.Once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type docWatcher struct {
	o      DocumentsOptions
	seen   map[string]docSeen
	emit   func([]byte) error
	logged map[string]bool // directory errors already logged
}

func (w *docWatcher) scan(ctx context.Context) error {
	entries, err := os.ReadDir(w.o.Dir)
	if err != nil {
		if w.logged == nil {
			w.logged = map[string]bool{}
		}
		if !w.logged[err.Error()] { // log once, keep polling: the directory may appear
			w.logged[err.Error()] = true
			w.o.Logger.Warn("documents: cannot list the directory", "dir", w.o.Dir, "err", err)
		}
		return nil
	}
	present := make(map[string]bool, len(entries))
	now := time.Now()
	for _, de := range entries {
		if ctx.Err() != nil {
			return nil
		}
		name := de.Name()
		if !de.Type().IsRegular() {
			continue
		}
		if ok, _ := filepath.Match(w.o.Pattern, name); !ok {
			continue
		}
		present[name] = true
		info, err := de.Info()
		if err != nil {
			continue
		}
		prev, was := w.seen[name]
		if was && prev.size == info.Size() && prev.mtime.Equal(info.ModTime()) {
			continue
		}
		if w.o.Settle > 0 && now.Sub(info.ModTime()) < w.o.Settle {
			continue // still being written, perhaps: next time
		}
		cur := docSeen{size: info.Size(), mtime: info.ModTime()}
		if info.Size() > w.o.MaxSize {
			w.o.Logger.Warn("documents: file too large, skipped", "file", name, "size", info.Size(), "max", w.o.MaxSize)
			w.seen[name] = cur
			continue
		}
		path := filepath.Join(w.o.Dir, name)
		switch strings.ToLower(filepath.Ext(name)) {
		case ".jsonl", ".ndjson":
			if was && info.Size() >= prev.offset {
				cur.offset = prev.offset
			}
			cur.offset, err = w.readLines(ctx, path, cur.offset)
		case ".json":
			err = w.readJSON(path)
		default:
			err = w.readText(path, name)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if _, ok := err.(emitError); ok {
				return err.(emitError).err
			}
			w.o.Logger.Warn("documents: cannot read a file, skipped", "file", name, "err", err)
		}
		w.seen[name] = cur
	}
	for name := range w.seen {
		if !present[name] {
			delete(w.seen, name)
		}
	}
	return nil
}

// emitError marks an error of emit (which stops the watch), as opposed
// to one reading a file (which skips it).
type emitError struct{ err error }

func (e emitError) Error() string { return e.err.Error() }

func (w *docWatcher) send(b []byte) error {
	if err := w.emit(b); err != nil {
		return emitError{err}
	}
	return nil
}

func (w *docWatcher) readLines(ctx context.Context, path string, offset int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return offset, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return offset, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	line := 0
	for ctx.Err() == nil {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 {
			offset += int64(len(b))
			line++
			b = bytes.TrimSpace(b)
			if len(b) > 0 {
				if !json.Valid(b) {
					w.o.Logger.Warn("documents: not JSON, line skipped", "file", path, "line_after_offset", line)
				} else if err := w.send(b); err != nil {
					return offset, err
				}
			}
		}
		if err == io.EOF {
			return offset, nil
		}
		if err != nil {
			return offset, err
		}
	}
	return offset, nil
}

func (w *docWatcher) readJSON(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b = bytes.TrimSpace(b)
	if !json.Valid(b) {
		return fmt.Errorf("not one JSON value")
	}
	return w.send(b)
}

func (w *docWatcher) readText(path, name string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc bytes.Buffer
	enc := json.NewEncoder(&doc)
	enc.SetEscapeHTML(false) // Markdown keeps its <, > and &
	_ = enc.Encode(struct {
		Path string `json:"path"`
		Name string `json:"name"`
		Text string `json:"text"`
	}{path, name, strings.ToValidUTF8(string(b), "\uFFFD")})
	return w.send(bytes.TrimRight(doc.Bytes(), "\n"))
}
