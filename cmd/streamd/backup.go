package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"streamd/state"
)

// backupMain is `streamd backup`: a full backup of the state store, from
// a running engine (--admin: GET /backup, taken from a consistent snapshot
// while it serves) or from a data directory no engine holds (--data).
func backupMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "", "admin address of a running engine (HOST:PORT)")
	data := fs.String("data", "", "data directory of a stopped engine")
	out := fs.String("out", "", "file to write the backup to (required)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *out == "" || (*admin == "") == (*data == "") {
		fmt.Fprintln(stderr, "streamd backup: want --out FILE and one of --admin HOST:PORT (running engine) or --data DIR (stopped engine)")
		return exitUsage
	}
	tmp := *out + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		fmt.Fprintf(stderr, "streamd backup: %v\n", err)
		return exitFail
	}
	n, err := writeBackup(f, *admin, *data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		fmt.Fprintf(stderr, "streamd backup: %v\n", err)
		return exitFail
	}
	if err := os.Rename(tmp, *out); err != nil {
		fmt.Fprintf(stderr, "streamd backup: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "backup written to %s (%d bytes)\n", *out, n)
	return exitOK
}

func writeBackup(w io.Writer, admin, data string) (int64, error) {
	if admin != "" {
		c := &http.Client{Timeout: 30 * time.Minute}
		req, err := http.NewRequest(http.MethodGet, "http://"+admin+"/backup", nil)
		if err != nil {
			return 0, err
		}
		setAdminToken(req)
		resp, err := c.Do(req)
		if err != nil {
			return 0, fmt.Errorf("%v (is streamd running with --admin %s?)", err, admin)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return 0, fmt.Errorf("GET /backup: %s: %s", resp.Status, b)
		}
		n, err := io.Copy(w, resp.Body)
		if err == nil && resp.Trailer.Get(backupTrailer) != "complete" {
			err = errors.New("the backup stream ended early (the engine reported an error: see its log)")
		}
		return n, err
	}
	st, err := state.Open(state.Options{Dir: data, GCInterval: -1})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	cw := &countWriter{w: w}
	_, err = st.Backup(cw, 0)
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// restoreMain is `streamd restore`: load a backup into an empty (or new)
// data directory, for an engine that is not running.
func restoreMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory to restore into: new or empty (required)")
	in := fs.String("in", "", "backup file (required)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *data == "" || *in == "" {
		fmt.Fprintln(stderr, "streamd restore: want --data DIR and --in FILE")
		return exitUsage
	}
	if ents, err := os.ReadDir(*data); err == nil && len(ents) > 0 {
		fmt.Fprintf(stderr, "streamd restore: %s is not empty: restore into a new directory, then point --data at it\n", *data)
		return exitFail
	}
	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintf(stderr, "streamd restore: %v\n", err)
		return exitFail
	}
	defer f.Close()
	st, err := state.Open(state.Options{Dir: *data, GCInterval: -1})
	if err != nil {
		fmt.Fprintf(stderr, "streamd restore: %v\n", err)
		return exitFail
	}
	if err := st.Load(f); err != nil {
		_ = st.Close()
		fmt.Fprintf(stderr, "streamd restore: %v\n", err)
		return exitFail
	}
	if err := st.Close(); err != nil {
		fmt.Fprintf(stderr, "streamd restore: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "restored %s into %s\n", *in, *data)
	return exitOK
}
