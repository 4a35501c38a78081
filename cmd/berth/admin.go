package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/saga"
)

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token", stderr)
	var db dbFlags
	db.register(fs)
	sub := fs.String("sub", "", "subject (account id), or the username of an account (e.g. a demo user)")
	groups := fs.String("groups", "", "comma-separated groups (default: the account's, or none)")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *sub == "" {
		return fmt.Errorf("--sub is required")
	}
	if *ttl <= 0 || *ttl > 30*24*time.Hour {
		return fmt.Errorf("--ttl must be between 1s and 720h")
	}
	issuer, err := auth.LoadOrCreateIssuer(db.data, "berth", "berth")
	if err != nil {
		return err
	}
	subject, username := *sub, *sub
	var gs []string
	if *groups != "" {
		gs = strings.Split(*groups, ",")
	}
	// A username of an account in the database stands for its subject.
	if s, err := db.open(ctx, newLogger(io.Discard, "error"), berth.SystemClock{}); err == nil {
		_ = s.View(ctx, func(tx berth.Tx) error {
			if a, err := tx.GetAccountByUsername(strings.ToLower(*sub)); err == nil {
				subject, username = a.ID, a.Username
				if *groups == "" {
					gs = a.Groups
				}
			}
			return nil
		})
		s.Close()
	}
	tok, err := issuer.Mint(subject, username, gs, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: berth dlq list | show ID | redrive ID [--data DIR | --database URL]")
	}
	sub, rest := args[0], args[1:]
	fs := newFlags("dlq "+sub, stderr)
	var db dbFlags
	db.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("limit", 100, "list at most this many")
	id, err := parseWithID(fs, rest)
	if err != nil {
		return err
	}
	s, err := db.open(ctx, newLogger(stderr, "warn"), berth.SystemClock{})
	if err != nil {
		return err
	}
	defer s.Close()
	switch sub {
	case "list":
		var xs []*berth.Execution
		if err := s.View(ctx, func(tx berth.Tx) (err error) {
			xs, err = tx.ListExecutions(berth.ExecutionQuery{Status: berth.ExecutionDead, Page: berth.Page{Limit: *limit}})
			return err
		}); err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(xs)
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tDEFINITION\tSTEP\tPHASE\tCORRELATION\tERROR\tUPDATED")
		for _, x := range xs {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", x.ID, x.Definition, x.Step, x.Phase, x.Correlation, x.Error, x.UpdatedAt.Format(time.RFC3339))
		}
		tw.Flush()
		fmt.Fprintf(stdout, "%d dead execution(s)\n", len(xs))
		return nil
	case "show":
		if id == "" {
			return fmt.Errorf("usage: berth dlq show ID")
		}
		var x *berth.Execution
		var h []*berth.HistoryEntry
		if err := s.View(ctx, func(tx berth.Tx) (err error) {
			if x, err = tx.GetExecution(id); err != nil {
				return err
			}
			h, err = tx.ListHistory(id)
			return err
		}); err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(map[string]any{"execution": x, "history": h})
		}
		fmt.Fprintf(stdout, "execution %s (%s) %s, phase %s, step %d, attempt %d\n", x.ID, x.Definition, x.Status, x.Phase, x.Step, x.Attempt)
		fmt.Fprintf(stdout, "correlation: %s\nerror: %s\ninput: %s\nstate: %s\n\nhistory:\n", x.Correlation, x.Error, x.Input, x.State)
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		for _, e := range h {
			fmt.Fprintf(tw, "%s\t%s\t%s\t#%d\t%s\t%s\n", e.At.Format("15:04:05.000"), e.Type, e.State, e.Attempt, e.Detail, e.Error)
		}
		return tw.Flush()
	case "redrive":
		if id == "" {
			return fmt.Errorf("usage: berth dlq redrive ID")
		}
		x, err := saga.Redrive(ctx, s, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "execution %s redriven at step %d (%s); a running server resumes it now\n", x.ID, x.Step, x.Phase)
		return nil
	}
	return fmt.Errorf("unknown dlq command %q: use list, show or redrive", sub)
}

func runAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: berth apikey create --name NAME [--ttl 720h] | list | revoke ID")
	}
	sub, rest := args[0], args[1:]
	fs := newFlags("apikey "+sub, stderr)
	var db dbFlags
	db.register(fs)
	name := fs.String("name", "", "what the key is for")
	ttl := fs.Duration("ttl", 0, "lifetime (0: never expires)")
	id, err := parseWithID(fs, rest)
	if err != nil {
		return err
	}
	s, err := db.open(ctx, newLogger(stderr, "warn"), berth.SystemClock{})
	if err != nil {
		return err
	}
	defer s.Close()
	switch sub {
	case "create":
		if *name == "" {
			return fmt.Errorf("--name is required")
		}
		kid, secret, full, err := auth.NewAPIKey()
		if err != nil {
			return err
		}
		k := &berth.APIKey{ID: kid, Name: *name, SecretHash: auth.HashAPIKeySecret(secret)}
		if *ttl > 0 {
			k.ExpiresAt = time.Now().Add(*ttl)
		}
		if err := s.Update(ctx, func(tx berth.Tx) error { return tx.CreateAPIKey(k) }); err != nil {
			return err
		}
		fmt.Fprintln(stdout, full)
		fmt.Fprintln(stderr, "Send it as the x-api-key header. It is shown only now; berth keeps only a hash.")
		return nil
	case "list":
		var ks []*berth.APIKey
		if err := s.View(ctx, func(tx berth.Tx) (err error) { ks, err = tx.ListAPIKeys(); return err }); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tEXPIRES\tACTIVE")
		for _, k := range ks {
			exp := "never"
			if !k.ExpiresAt.IsZero() {
				exp = k.ExpiresAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", k.ID, k.Name, k.CreatedAt.Format(time.RFC3339), exp, k.Active(time.Now()))
		}
		return tw.Flush()
	case "revoke":
		if id == "" {
			return fmt.Errorf("usage: berth apikey revoke ID")
		}
		return s.Update(ctx, func(tx berth.Tx) error { return tx.RevokeAPIKey(id, tx.Now()) })
	}
	return fmt.Errorf("unknown apikey command %q: use create, list or revoke", sub)
}

func runPayments(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "heal" {
		return fmt.Errorf("usage: berth payments heal CHARGE_ID... [--data DIR | --database URL]")
	}
	fs := newFlags("payments heal", stderr)
	var db dbFlags
	db.register(fs)
	var ids []string
	rest := args[1:]
	for len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		ids, rest = append(ids, rest[0]), rest[1:]
	}
	if err := parse(fs, rest); err != nil {
		return err
	}
	ids = append(ids, fs.Args()...)
	if len(ids) == 0 {
		return fmt.Errorf("name at least one charge id")
	}
	s, err := db.open(ctx, newLogger(stderr, "warn"), berth.SystemClock{})
	if err != nil {
		return err
	}
	defer s.Close()
	var refs []string
	if err := s.View(ctx, func(tx berth.Tx) error {
		for _, id := range ids {
			c, err := tx.GetCharge(id)
			if err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
			refs = append(refs, c.ProviderRef)
		}
		return nil
	}); err != nil {
		return err
	}
	n, err := payment.Heal(ctx, s, refs...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cleared %d simulated payment fault(s)\n", n)
	return nil
}

// parseWithID parses args, which may start with one positional argument (an
// id) before the flags, and returns that argument.
func parseWithID(fs *flag.FlagSet, args []string) (string, error) {
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return "", err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	return id, nil
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", stderr)
	var db dbFlags
	db.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := db.open(ctx, newLogger(stderr, "info"), berth.SystemClock{}) // Open migrates
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(stdout, "database (%s) is at the newest schema\n", s.Dialect())
	return nil
}
