// Command berth is the berth booking engine: one binary that serves the
// GraphQL API, runs the saga engine and administers the data directory.
//
//	berth serve [--addr 127.0.0.1:8080] [--data DIR] [--database URL] [--demo]
//	berth token --sub SUBJECT [--groups a,b] [--ttl 1h] [--data DIR]
//	berth dlq list|show ID|redrive ID [--data DIR | --database URL]
//	berth apikey create|list|revoke
//	berth payments heal CHARGE_ID...
//	berth migrate | berth version
//
// Every flag can also be set with an environment variable: BERTH_ plus the
// flag name in upper case with dashes as underscores (BERTH_DATABASE_URL is
// also accepted for --database).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/berthhq/berth"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `berth — a self-hosted booking engine

Usage:
  berth serve   [--addr 127.0.0.1:8080] [--data DIR] [--database URL] [--demo]   run the server
  berth token   --sub SUBJECT [--groups a,b] [--ttl 1h] [--data DIR]              print an access token
  berth dlq     list | show ID | redrive ID [--data DIR | --database URL]         the dead-letter queue
  berth apikey  create --name NAME [--ttl 720h] | list | revoke ID                API keys for public reads
  berth payments heal CHARGE_ID...                                                clear simulated payment faults
  berth migrate [--data DIR | --database URL]                                     apply database migrations
  berth bench   --scenario flash-sale|spread [--target URL] [--json FILE]         measure throughput and latency
  berth version

Run "berth COMMAND --help" for the flags of a command. Every flag may also be
set in the environment as BERTH_<FLAG> (e.g. BERTH_DATA, BERTH_DATABASE).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "berth:", berthMessage(err))
		}
		os.Exit(2)
	}
}

func berthMessage(err error) string {
	var e *berth.Error
	if errors.As(err, &e) {
		return e.Code + ": " + e.Message
	}
	return err.Error()
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "token":
		return runToken(ctx, rest, stdout, stderr)
	case "dlq":
		return runDLQ(ctx, rest, stdout, stderr)
	case "apikey":
		return runAPIKey(ctx, rest, stdout, stderr)
	case "payments":
		return runPayments(ctx, rest, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "berth", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// newFlags returns a flag set whose defaults come from BERTH_* variables
// after parsing (see applyEnv).
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("berth "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args, taking each flag not given on the command line from
// the environment (BERTH_FLAG_NAME).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "BERTH_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(env)
		if !ok && f.Name == "database" {
			v, ok = os.LookupEnv("BERTH_DATABASE_URL")
		}
		if ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}
