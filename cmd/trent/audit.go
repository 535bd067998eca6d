package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/audit"
)

func newAuditCmd(g *globals) *cobra.Command {
	var (
		dir, file, since, until string
		f                       audit.Filter
	)
	cmd := &cobra.Command{
		Use:   "audit [--dir DIR | --file FILE] [filters]",
		Short: "Filter the KMS API audit events (CloudTrail-like JSON lines)",
		Long: `Print the audit events a service host wrote (one per KMS API request) that
match every filter given. With --json each event is printed as one JSON line,
as in the file. --since and --until take RFC 3339 times or durations back from
now (15m, 2h).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				file = filepath.Join(dir, "audit.jsonl")
			}
			var err error
			if f.Since, err = parseWhen(since); err != nil {
				return err
			}
			if f.Until, err = parseWhen(until); err != nil {
				return err
			}
			r, err := os.Open(file)
			if err != nil {
				return err
			}
			defer r.Close()
			enc := json.NewEncoder(g.stdout)
			return audit.Scan(r, &f, func(e *audit.Event) error {
				if g.json {
					return enc.Encode(e)
				}
				who, outcome := "-", "ok"
				if e.UserIdentity != nil {
					who = e.UserIdentity.ARN
				}
				if e.ErrorCode != "" {
					outcome = e.ErrorCode
				}
				name, key := e.EventName, e.KeyID
				if name == "" {
					name = "-"
				}
				if key == "" {
					key = "-"
				}
				_, err := fmt.Fprintf(g.stdout, "%s  %-28s %-30s %-44s %s\n", e.EventTime.Format(time.RFC3339), name, outcome, who, key)
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dir, "dir", ".trent-dev", "the dev cluster's data dir (its audit.jsonl)")
	fl.StringVar(&file, "file", "", "an audit file (a host's --audit-file)")
	fl.StringVar(&f.EventName, "event-name", "", "only this operation (e.g. GenerateRandom)")
	fl.StringVar(&f.Principal, "principal", "", "only this caller ARN")
	fl.StringVar(&f.KeyID, "key-id", "", "only this key ID or ARN, as the request named it")
	fl.BoolVar(&f.ErrorsOnly, "errors", false, "only requests that were refused")
	fl.StringVar(&since, "since", "", "only events at or after this time")
	fl.StringVar(&until, "until", "", "only events before this time")
	return cmd
}

// parseWhen reads an RFC 3339 time or a duration back from now; "" is
// the zero time.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
	}
	return t, nil
}
