package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/berthhq/berth/bench"
)

// runBench is `berth bench`: the load generator (see package bench).
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	scenario := fs.String("scenario", bench.FlashSale, "flash-sale (one flight, everyone books until sold out) or spread (many flights, no contention)")
	target := fs.String("target", "", "base `URL` of a running berth server (default: start one, --embedded)")
	embedded := fs.Bool("embedded", true, "start berth on a temporary SQLite file (or --database) as a child process")
	inProcess := fs.Bool("in-process", false, "run the embedded server inside this process (for --cpuprofile/--memprofile of the server; its RSS then includes the load generator)")
	data := fs.String("data", "", "data `directory`: with --target, the server's (its key mints the tokens; default ./berth-data); embedded: default a temporary one")
	database := fs.String("database", "", "database `URL` (postgres://…): embedded, the server's database; with --target, enables the calibration and the database checks")
	synchronous := fs.String("synchronous", "FULL", "SQLite synchronous setting of the embedded server and the calibration")
	serveFlags := fs.String("serve-flags", "", "extra `flags` for the embedded berth serve, space-separated (e.g. \"--workers 32\")")
	users := fs.Int("users", 64, "virtual customers")
	seats := fs.Int("seats", 5000, "seats of the flash-sale flight, and of each spread flight")
	flights := fs.Int("flights", 0, "spread: number of flights (default: one per customer)")
	duration := fs.Duration("duration", 30*time.Second, "spread: how long customers keep booking")
	maxTime := fs.Duration("max-time", 10*time.Minute, "flash-sale: give up if not sold out after this long")
	inFlight := fs.Int("in-flight", 1, "bookings a customer waits for at once (1: wait for each outcome before booking again)")
	wait := fs.String("wait", bench.WaitLong, "how customers wait for a booking's outcome: long (one getBooking(waitFor: [CONFIRMED, CANCELLED]) long-poll) or poll (getBooking polled, as the original front end)")
	pollMax := fs.Duration("poll-max", 50*time.Millisecond, "interval of getBooking polls while a customer waits for the outcome: from 5ms growing to this (or a fifth of the wait, if longer)")
	calibrate := fs.Duration("calibrate", 3*time.Second, "duration of each raw guarded-UPDATE measurement (0: skip)")
	jsonOut := fs.String("json", "", "write every figure as JSON to `FILE`")
	svgOut := fs.String("svg", "", "draw throughput, latency and memory over time to `FILE` (SVG)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process to `FILE` (the server's too with --in-process)")
	memProfile := fs.String("memprofile", "", "write an allocation profile of this process to `FILE` (the server's too with --in-process)")
	if err := parse(fs, args); err != nil {
		return err
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if *target != "" && explicit["embedded"] && *embedded {
		return errors.New("--embedded and --target exclude each other")
	}
	if *target == "" && !*embedded {
		return errors.New("give --target URL, or run --embedded")
	}
	cfg := bench.Config{
		Scenario: *scenario, Target: *target, DataDir: *data, Database: *database, Synchronous: *synchronous,
		Users: *users, Seats: *seats, Flights: *flights, Duration: *duration, MaxTime: *maxTime, InFlight: *inFlight,
		Wait: *wait, PollMax: *pollMax, Calibrate: *calibrate, Log: stderr, ServeArgs: strings.Fields(*serveFlags),
	}
	if *calibrate <= 0 {
		cfg.Calibrate = -1
	}
	if *target != "" && cfg.DataDir == "" {
		cfg.DataDir = "./berth-data"
	}
	if *target == "" {
		if *inProcess {
			cfg.Start = startInProcess
		} else {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			cfg.Start = bench.ChildStarter(exe)
		}
	}
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			cfg.Progress = stderr
		}
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return err
		}
		runtime.GC()
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
		if err != nil {
			return err
		}
	}
	rep.WriteText(stdout)
	if *jsonOut != "" {
		if err := rep.WriteJSON(*jsonOut); err != nil {
			return err
		}
	}
	if *svgOut != "" {
		if err := rep.WriteSVGFile(*svgOut); err != nil {
			return err
		}
	}
	if !rep.Invariants.OK {
		return fmt.Errorf("bench: invariants failed: %s", strings.Join(rep.Invariants.Problems, "; "))
	}
	return nil
}

// startInProcess runs runServe in this process: the real wiring, on the
// arguments given, reading the address from what it prints.
func startInProcess(ctx context.Context, args []string) (*bench.Server, error) {
	pr, pw := io.Pipe()
	logs, logTail := bench.NewTailBuffer(64 << 10)
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() {
		err := runServe(sctx, args, pw, logs)
		pw.Close()
		done <- err
	}()
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := bench.ListenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	select {
	case u := <-urlc:
		return &bench.Server{URL: u, PID: os.Getpid(), InProcess: true, Stop: stop, Logs: logTail}, nil
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("berth serve stopped (%v): %s", err, logTail())
	case <-ctx.Done():
		_ = stop()
		return nil, ctx.Err()
	}
}
