package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is a berth server the benchmark started.
type Server struct {
	// URL is the server's base URL (http://127.0.0.1:PORT).
	URL string
	// PID is the process serving, for its memory; 0 if unknown.
	PID int
	// InProcess says the server runs inside the benchmark's own process:
	// its memory then includes the load generator's.
	InProcess bool
	// Stop shuts the server down gracefully and waits for it.
	Stop func() error
	// Logs returns the end of the server's log output.
	Logs func() string
}

// Starter starts a berth server with the arguments of `berth serve`
// (without the "serve" itself) and returns once it listens.
type Starter func(ctx context.Context, serveArgs []string) (*Server, error)

// ListenRE matches the line `berth serve` prints once it listens.
var ListenRE = regexp.MustCompile(`listening on (http://\S+)`)

// ChildStarter starts `exe serve ARGS…` as a child process: its memory is
// the server's alone. The child runs in its own process group, so that a
// Ctrl-C stops the load and not the server (the benchmark stops it once the
// sagas ended), and it is sent SIGTERM if the benchmark dies.
func ChildStarter(exe string) Starter {
	return func(ctx context.Context, args []string) (*Server, error) {
		cmd := exec.Command(exe, append([]string{"serve"}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		logs := &tailBuffer{max: 64 << 10}
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		urlc := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if m := ListenRE.FindStringSubmatch(sc.Text()); m != nil {
					select {
					case urlc <- m[1]:
					default:
					}
				}
			}
		}()
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		stop := func() error {
			select {
			case <-exited:
				return nil
			default:
			}
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				return nil
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				return errors.New("the berth server did not stop within 30s and was killed")
			}
		}
		kill := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		select {
		case u := <-urlc:
			return &Server{URL: u, PID: cmd.Process.Pid, Stop: stop, Logs: logs.String}, nil
		case <-exited:
			return nil, fmt.Errorf("berth serve exited (%v): %s", waitErr, logs.String())
		case <-ctx.Done():
			kill()
			return nil, ctx.Err()
		case <-time.After(2 * time.Minute):
			kill()
			return nil, fmt.Errorf("berth serve did not start within 2 minutes: %s", logs.String())
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// NewTailBuffer returns a writer that keeps the last max bytes written to
// it, and a function returning them (for the logs of an in-process server).
func NewTailBuffer(max int) (io.Writer, func() string) {
	t := &tailBuffer{max: max}
	return t, t.String
}

// procStatus reads the kB values of fields (VmRSS, VmHWM) of
// /proc/PID/status; missing fields are 0.
func procStatus(pid int, fields ...string) (map[string]int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, f := range fields {
			if name == f {
				v := strings.Fields(val)
				if len(v) > 0 {
					n, _ := strconv.ParseInt(v[0], 10, 64)
					out[f] = n
				}
			}
		}
	}
	return out, nil
}

// promSample returns the value of the first sample of metric (name plus
// optional {labels} prefix) in a Prometheus text exposition.
func promSample(text []byte, metric string) (float64, bool) {
	for line := range bytes.SplitSeq(text, []byte("\n")) {
		if len(line) == 0 || line[0] == '#' || !bytes.HasPrefix(line, []byte(metric)) {
			continue
		}
		rest := line[len(metric):]
		if len(rest) == 0 || (rest[0] != ' ' && rest[0] != '{') {
			continue // a longer metric name
		}
		i := bytes.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(string(line[i+1:]), 64)
		if err != nil {
			continue
		}
		return v, true
	}
	return 0, false
}

// serverStats is what /metrics says about the server process.
type serverStats struct {
	Goroutines int     `json:"goroutines"`
	OpenFDs    int     `json:"open_fds"`
	RSSMB      float64 `json:"rss_mb"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Running    int     `json:"running_executions"`
	Dead       int     `json:"dead_executions"`
	// StoreUpdates and StoreCommits are the server's read-write
	// transactions and the database COMMITs that committed them.
	StoreUpdates float64 `json:"store_updates"`
	StoreCommits float64 `json:"store_commits"`
}

func (c *client) serverStats(ctx context.Context) (serverStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := c.get(ctx, "/metrics")
	if err != nil {
		return serverStats{}, err
	}
	var s serverStats
	if v, ok := promSample(b, "go_goroutines"); ok {
		s.Goroutines = int(v)
	}
	if v, ok := promSample(b, "process_open_fds"); ok {
		s.OpenFDs = int(v)
	}
	if v, ok := promSample(b, "process_resident_memory_bytes"); ok {
		s.RSSMB = round1(v / (1 << 20))
	}
	if v, ok := promSample(b, "process_cpu_seconds_total"); ok {
		s.CPUSeconds = round3(v)
	}
	if v, ok := promSample(b, `berth_saga_executions{status="RUNNING"}`); ok {
		s.Running = int(v)
	}
	if v, ok := promSample(b, `berth_saga_executions{status="DEAD"}`); ok {
		s.Dead = int(v)
	}
	s.StoreUpdates, _ = promSample(b, "berth_store_updates_total")
	s.StoreCommits, _ = promSample(b, "berth_store_commits_total")
	return s, nil
}
