// Command csat is the CSAT survey service: one binary for the API, the
// worker and the admin commands.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/csat/csat/app"
	"github.com/csat/csat/db"
	"github.com/csat/csat/ops"
	"github.com/csat/csat/tenants"
)

const usage = `csat: customer-satisfaction surveys.

Usage:
  csat serve                          run the HTTP API, worker and sweep (CSAT_ROLE picks which)
  csat migrate                        apply database migrations and exit
  csat healthcheck                    exit 0 when the server on HTTP_ADDR answers /healthz
  csat tenant create --name NAME      create a tenant; prints {"id", "name"}
  csat apikey create --tenant ID --scopes csat:read,csat:write,config:write
                                      create an API key; prints it once

Configuration comes from the environment (DATABASE_URL, APP_DATABASE_URL, REDIS_URL, HTTP_ADDR,
PUBLIC_BASE_URL, SMTP_URL, MAIL_FROM, OPS_TOKEN, CSAT_RECONCILE_INTERVAL,
CSAT_AUTO_MIGRATE, CSAT_ROLE, WORKER_CONCURRENCY, SHUTDOWN_TIMEOUT); see README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "csat:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return errors.New("a command is required")
		}
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	if (cmd == "tenant" || cmd == "apikey") && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		cmd, rest = cmd+" "+rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, rest, getenv, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, rest, getenv, stdout, stderr)
	case "tenant create":
		return tenantCreate(ctx, rest, getenv, stdout, stderr)
	case "apikey create":
		return apikeyCreate(ctx, rest, getenv, stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", strings.Join(args[:min(2, len(args))], " "))
}

func newFlags(name, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: csat %s\n\n%s\n", name, help)
		fs.PrintDefaults()
	}
	return fs
}

func logger(cfg app.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	return slog.New(ops.LogHandler{Handler: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

func serve(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	fs := newFlags("serve", "Runs the HTTP API, the asynq worker and the periodic sweep (by CSAT_ROLE).", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := app.LoadConfig(getenv)
	if err != nil {
		return err
	}
	log := logger(cfg, stderr)
	slog.SetDefault(log)
	redis.SetLogger(redisLog{log})
	log.Info("garbage collector", "gogc", app.TuneGC(getenv))
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	return a.Serve(ctx, ln)
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", "Creates the database if missing and applies pending migrations.", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := app.LoadConfig(getenv)
	if err != nil {
		return err
	}
	if err := db.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	bdb, err := db.OpenOwner(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer bdb.Close()
	if err := db.Migrate(ctx, bdb); err != nil {
		return err
	}
	fmt.Fprintln(stdout, `{"migrated": true}`)
	return nil
}

// store opens the database for an admin command.
func store(ctx context.Context, getenv func(string) string) (*tenants.Store, func(), error) {
	cfg, err := app.LoadConfig(getenv)
	if err != nil {
		return nil, nil, err
	}
	bdb, err := db.Open(cfg.AppDatabaseURL, 2)
	if err != nil {
		return nil, nil, err
	}
	if err := bdb.PingContext(ctx); err != nil {
		bdb.Close()
		return nil, nil, fmt.Errorf("connect to APP_DATABASE_URL (run csat migrate first): %w", err)
	}
	return &tenants.Store{DB: bdb}, func() { bdb.Close() }, nil
}

func tenantCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("tenant create --name NAME", "Creates a tenant with the default CSAT config.", stderr)
	name := fs.String("name", "", "the tenant's display name (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return errors.New("--name is required")
	}
	st, closeDB, err := store(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeDB()
	t, err := st.CreateTenant(ctx, *name)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]string{"id": t.ID, "name": t.Name})
}

func apikeyCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("apikey create --tenant ID --scopes LIST",
		"Creates an API key. The key is printed once; only its hash is stored.", stderr)
	tenant := fs.String("tenant", "", "tenant id (required)")
	scopes := fs.String("scopes", "csat:read,csat:write,config:write", "comma-separated scopes: "+strings.Join(tenants.AllScopes, ","))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tenant == "" {
		return errors.New("--tenant is required")
	}
	sc, err := tenants.ParseScopes(*scopes)
	if err != nil {
		return err
	}
	st, closeDB, err := store(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeDB()
	k, err := st.CreateKey(ctx, *tenant, sc)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]any{"id": k.ID, "key": k.Key, "scopes": k.Scopes})
}

// redisLog puts go-redis's own messages (pool dial failures) in the JSON
// log instead of plain lines on stderr.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// healthcheck asks the local server for /healthz: the container image has
// no shell or curl, so docker's healthcheck runs the binary itself.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("healthcheck", "Exits 0 when the server on HTTP_ADDR answers GET /healthz with 200.", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := app.LoadConfig(getenv)
	if err != nil {
		return err
	}
	url, err := healthURL(cfg.HTTPAddr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", url, res.StatusCode)
	}
	fmt.Fprintln(stdout, `{"status": "ok"}`)
	return nil
}

// healthURL is the /healthz URL of the server listening on addr; a
// wildcard host (":8080", "0.0.0.0:8080") is reached on the loopback.
func healthURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("invalid HTTP_ADDR %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0", "::", "[::]":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
