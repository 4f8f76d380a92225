// Command csatbench loads a realistic data set into a database of its own,
// runs the whole service in-process against it and measures every public
// scenario over real HTTP on loopback, next to the raw Postgres floors, the
// send wave and the process's memory. It prints one table and writes the
// same as JSON (bench/results/latest.json).
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/csat/csat/app"
	"github.com/csat/csat/db"
	"github.com/csat/csat/tenants"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app.TuneGC(os.Getenv) // as csat serve does: the service runs in this process
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "csatbench:", err)
		os.Exit(1)
	}
}

type options struct {
	Surveys     int
	Tenants     int
	Ref         int
	Concurrency int
	Duration    time.Duration
	Wave        int
	WaveSpread  time.Duration
	DSN         string
	RedisURL    string
	Out         string
	Keep        bool
	Triggers    bool
	Only        string
	Scenarios   string
	CPUProfile  string
	CompareRLS  bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("csatbench", flag.ContinueOnError)
	fs.IntVar(&o.Surveys, "surveys", 1_000_000, "surveys in the measured tenant")
	fs.IntVar(&o.Tenants, "tenants", 3, "tenants: the measured one, a reference one of -ref surveys (flatness), the rest -ref surveys each")
	fs.IntVar(&o.Ref, "ref", 10_000, "surveys of each other tenant; the flatness reference size")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "concurrent clients per scenario")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "time per scenario (floors and reference runs take half)")
	fs.IntVar(&o.Wave, "wave", 10_000, "surveys due at once in the send wave")
	fs.DurationVar(&o.WaveSpread, "wave-spread", time.Minute, "a second wave of as many surveys due evenly over this (0: none)")
	fs.StringVar(&o.DSN, "db", envOr("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/csat_bench?sslmode=disable"),
		"database to create (dropped and recreated!)")
	fs.StringVar(&o.RedisURL, "redis", envOr("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"), "Redis database of the bench (flushed!)")
	fs.StringVar(&o.Out, "out", "bench/results/latest.json", "where to write the JSON results (empty: nowhere)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the bench database afterwards")
	fs.StringVar(&o.Only, "only", "", "run only these parts, comma-separated: floors, scenarios, wave (while tuning)")
	fs.StringVar(&o.Scenarios, "scenarios", "", "run only these scenarios, comma-separated: intake, one_click, ... (while tuning)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured part to this file")
	fs.BoolVar(&o.CompareRLS, "compare-rls", true, "run the reads again without row-level security (the service as the table owner) and report the cost")
	fs.BoolVar(&o.Triggers, "triggers", false, "keep the surveys triggers on during COPY (slower; rollups kept row by row)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.Surveys < 100 || o.Tenants < 2 || o.Ref < 100 || o.Concurrency < 1 || o.Wave < 1 {
		return o, errors.New("want -surveys >= 100, -tenants >= 2, -ref >= 100, -concurrency >= 1, -wave >= 1")
	}
	return o, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// report is bench/results/latest.json: the shape plus context.
type report struct {
	Machine   string             `json:"machine"`
	Surveys   int                `json:"surveys"`
	Scenarios []result           `json:"scenarios"`
	Flatness  map[string]float64 `json:"flatness"`
	SendWave  waveResult         `json:"send_wave"`
	// SendWaveSpread is the same number of surveys due over -wave-spread:
	// the day-to-day shape of a wave (how late each email is when the
	// workers keep up), where send_wave is the worst case.
	SendWaveSpread waveResult `json:"send_wave_spread"`
	RSSMB          float64    `json:"rss_mb"`
	RSSNote        string     `json:"rss_note"`
	Floors         []result   `json:"floors"`
	Reference      []result   `json:"reference"`
	// WithoutRLS are the reads run again with the service connected as the
	// owner (row-level security bypassed); RLSCost is each one's req/s
	// without RLS divided by its req/s with it (1.10: RLS costs 10 %).
	WithoutRLS  []result           `json:"without_rls,omitempty"`
	RLSCost     map[string]float64 `json:"rls_cost,omitempty"`
	Concurrency int                `json:"concurrency"`
	DurationS   float64            `json:"duration_s"`
	LoadSeconds float64            `json:"load_seconds"`
	LoadedRows  int                `json:"loaded_rows"`
	LoadPhases  map[string]float64 `json:"load_phases_s"`
	Date        string             `json:"date"`
	Notes       []string           `json:"notes,omitempty"`
}

// bench is one run's shared state.
type bench struct {
	o       options
	log     *slog.Logger
	bdb     *bun.DB
	now     time.Time
	seed    uint64
	runID   string
	big     tenantData
	ref     tenantData
	keys    map[string]string // tenant id -> API key
	url     string
	app     *app.App
	sink    *sink
	notes   []string
	tenants *tenants.Store
	stopApp func()
	asOwner bool // connect the service as the owner (the run without RLS)
	phases  map[string]float64
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	// The service logs to a file: a benchmark's table should not drown.
	logf, err := os.CreateTemp("", "csatbench-service-*.log")
	if err != nil {
		return err
	}
	defer logf.Close()
	b := &bench{o: o, now: time.Now().UTC(), seed: uint64(time.Now().UnixNano()), keys: map[string]string{},
		log: slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	fmt.Fprintln(stdout, "service log:", logf.Name())
	b.runID = fmt.Sprintf("%x", b.seed&0xffffff)
	rep := report{Surveys: o.Surveys, Concurrency: o.Concurrency, DurationS: o.Duration.Seconds(),
		Date: b.now.Format(time.RFC3339), Machine: machine()}

	if err := b.prepare(ctx); err != nil {
		return err
	}
	defer b.cleanup()
	fmt.Fprintf(stdout, "loading %d surveys (+%d in %d other tenants)...\n", o.Surveys, (o.Tenants-1)*o.Ref, o.Tenants-1)
	rows, took, err := b.load(ctx)
	if err != nil {
		return err
	}
	rep.LoadPhases = b.phases
	rep.LoadSeconds, rep.LoadedRows = round(took.Seconds(), 1), rows
	fmt.Fprintf(stdout, "loaded %d rows in %.1fs %v\n", rows, took.Seconds(), b.phases)
	// The load leaves its pages dirty and its WAL unchecked: without this, a
	// checkpoint writes them out during the first scenarios (the UPDATE
	// floor once measured 1,434 req/s, p99 30 ms, where it measures 3,000 to
	// 6,000). The service is measured, not the load's aftermath.
	start := time.Now()
	if _, err := b.bdb.ExecContext(ctx, "CHECKPOINT"); err != nil {
		fmt.Fprintf(stdout, "no checkpoint after the load (it needs a superuser or pg_checkpoint): %v\n", err)
	} else {
		fmt.Fprintf(stdout, "checkpoint after the load: %.1fs\n", time.Since(start).Seconds())
	}

	if err := b.start(ctx); err != nil {
		return err
	}
	runtime.GC()
	debug.FreeOSMemory()
	rss := startRSS()
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	part := func(name string) bool { return o.Only == "" || slices.Contains(strings.Split(o.Only, ","), name) }
	fmt.Fprintln(stdout, "running scenarios...")
	rep.Floors = []result{{Name: "floor_select", Kind: "floor"}, {Name: "floor_update", Kind: "floor"}}
	if part("floors") {
		rep.Floors = b.floors(ctx)
	}
	if part("scenarios") {
		var pick map[string]bool
		if o.Scenarios != "" {
			pick = map[string]bool{}
			for _, n := range strings.Split(o.Scenarios, ",") {
				pick[strings.TrimSpace(n)] = true
			}
		}
		rep.Scenarios = b.scenarios(ctx, b.big, o.Duration, pick, "")
		ref := map[string]bool{"list": pick == nil || pick["list"], "analytics_365d": pick == nil || pick["analytics_365d"]}
		rep.Reference = b.scenarios(ctx, b.ref, o.Duration/2, ref, "_ref")
		if o.CompareRLS {
			if rep.WithoutRLS, err = b.withoutRLS(ctx); err != nil {
				return err
			}
			rep.RLSCost = rlsCost(rep.Scenarios, rep.WithoutRLS)
		}
	}
	rep.Flatness = flatness(rep.Scenarios, rep.Reference)
	setRatios(rep.Scenarios, rep.Floors)
	setRatios(rep.Reference, rep.Floors)
	if part("wave") {
		fmt.Fprintf(stdout, "send wave of %d...\n", o.Wave)
		if rep.SendWave, err = b.wave(ctx, 0); err != nil {
			return err
		}
		if o.WaveSpread > 0 {
			fmt.Fprintf(stdout, "send wave of %d due over %s...\n", o.Wave, o.WaveSpread)
			if rep.SendWaveSpread, err = b.wave(ctx, o.WaveSpread); err != nil {
				return err
			}
		}
	}
	rep.RSSMB = rss.PeakMB()
	rep.RSSNote = "peak VmRSS of the bench process, sampled every 100 ms from service start to the end of the wave: the service runs in-process, so this includes the load generator and the SMTP sink"
	rep.Notes = b.notes
	printTable(stdout, rep)
	if o.Out != "" {
		js, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.Out, append(js, '\n'), 0o644); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		fmt.Fprintln(stdout, "wrote", o.Out)
	}
	return nil
}

// prepare recreates the bench database and Redis DB and creates tenants.
func (b *bench) prepare(ctx context.Context) error {
	u, err := url.Parse(b.o.DSN)
	if err != nil {
		return fmt.Errorf("parse -db: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || name == "postgres" || !strings.Contains(name, "bench") {
		return fmt.Errorf("-db must name a database with \"bench\" in its name (it is dropped), not %q", name)
	}
	admin := *u
	admin.Path = "/postgres"
	adb, err := db.Open(admin.String(), 1)
	if err != nil {
		return err
	}
	defer adb.Close()
	if _, err := adb.ExecContext(ctx, "DROP DATABASE IF EXISTS ? WITH (FORCE)", bun.Ident(name)); err != nil {
		return fmt.Errorf("drop bench database: %w", err)
	}
	if _, err := adb.ExecContext(ctx, "CREATE DATABASE ?", bun.Ident(name)); err != nil {
		return fmt.Errorf("create bench database: %w", err)
	}
	// The loader's statements (index builds, recounts) may run for longer
	// than the service's statement timeout (db.StatementTimeout), and want
	// more memory than the server's default.
	b.bdb = bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(b.o.DSN), pgdriver.WithTimeout(30*time.Minute),
		pgdriver.WithConnParams(map[string]any{"work_mem": "256MB", "maintenance_work_mem": "256MB"}))), pgdialect.New())
	if err := db.Migrate(ctx, b.bdb); err != nil {
		return err
	}
	if err := b.flushRedis(ctx); err != nil {
		return err
	}
	b.tenants = &tenants.Store{DB: b.bdb}
	for i := range b.o.Tenants {
		t, err := b.tenants.CreateTenant(ctx, fmt.Sprintf("Bench tenant %d", i))
		if err != nil {
			return err
		}
		k, err := b.tenants.CreateKey(ctx, t.ID, []string{tenants.ScopeRead, tenants.ScopeWrite, tenants.ScopeConfigWrite})
		if err != nil {
			return err
		}
		b.keys[t.ID] = k.Key
		td := tenantData{ID: t.ID, N: b.o.Ref, Live: min(20_000, b.o.Ref/5)}
		switch i {
		case 0:
			td = tenantData{ID: t.ID, N: b.o.Surveys, Live: min(20_000, b.o.Surveys/5)}
			b.big = td
		case 1:
			b.ref = td
		}
	}
	return nil
}

func (b *bench) flushRedis(ctx context.Context) error {
	opt, err := redis.ParseURL(b.o.RedisURL)
	if err != nil {
		return fmt.Errorf("parse -redis: %w", err)
	}
	if opt.DB == 0 {
		return errors.New("-redis must name a Redis database other than 0 (it is flushed)")
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("flush bench redis: %w", err)
	}
	return nil
}

// cleanup stops the service and drops the database unless -keep.
func (b *bench) cleanup() {
	if b.app != nil {
		b.stopApp()
	}
	if b.sink != nil {
		b.sink.Close()
	}
	if b.bdb != nil {
		_ = b.bdb.Close()
	}
	if b.o.Keep {
		return
	}
	u, _ := url.Parse(b.o.DSN)
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	if adb, err := db.Open(u.String(), 1); err == nil {
		_, _ = adb.ExecContext(context.Background(), "DROP DATABASE IF EXISTS ? WITH (FORCE)", bun.Ident(name))
		_ = adb.Close()
	}
}

// load fills the surveys table: secondary indexes are dropped, every
// tenant's rows are COPYed, the indexes rebuilt and the table analysed,
// then the derived tables are recomputed.
func (b *bench) load(ctx context.Context) (int, time.Duration, error) {
	start := time.Now()
	b.phases = map[string]float64{}
	mark := time.Now()
	phase := func(name string) {
		b.phases[name] = round(time.Since(mark).Seconds(), 1)
		mark = time.Now()
	}
	names, defs, err := secondaryIndexes(ctx, b.bdb)
	if err != nil {
		return 0, 0, fmt.Errorf("list indexes: %w", err)
	}
	for _, n := range names {
		if _, err := b.bdb.ExecContext(ctx, "DROP INDEX ?", bun.Ident(n)); err != nil {
			return 0, 0, fmt.Errorf("drop index %s: %w", n, err)
		}
	}
	// The rollup and counter triggers (and the foreign-key check) would
	// fire per COPYed row; with -triggers they do (to measure that), else
	// the derived tables are rebuilt after. The generated rows reference
	// tenants that exist, so skipping the foreign-key check is safe here.
	if !b.o.Triggers {
		if _, err := b.bdb.ExecContext(ctx, "ALTER TABLE surveys DISABLE TRIGGER ALL"); err != nil {
			return 0, 0, fmt.Errorf("disable triggers: %w", err)
		}
	}
	// Two COPY streams at a time (the machine has two cores): the big
	// tenant in two halves, then the others.
	rows := 0
	var chunks []func() error
	for id := range b.keys {
		t := tenantData{ID: id, N: b.o.Ref, Live: min(20_000, b.o.Ref/5)}
		switch id {
		case b.big.ID:
			t = b.big
		case b.ref.ID:
			t = b.ref
		}
		rows += t.N
		half := t.N / 2
		for _, r := range [][2]int{{0, half}, {half, t.N}} {
			chunks = append(chunks, func() error { return copySurveys(ctx, b.bdb, t, r[0], r[1], b.now, b.seed) })
		}
	}
	if err := inParallel(2, chunks); err != nil {
		return 0, 0, err
	}
	phase("copy")
	for _, d := range defs {
		if _, err := b.bdb.ExecContext(ctx, d); err != nil {
			return 0, 0, fmt.Errorf("rebuild index: %w", err)
		}
	}
	phase("indexes")
	if !b.o.Triggers {
		if _, err := b.bdb.ExecContext(ctx, "ALTER TABLE surveys ENABLE TRIGGER ALL"); err != nil {
			return 0, 0, fmt.Errorf("enable triggers: %w", err)
		}
		if err := refreshDerived(ctx, b.bdb); err != nil {
			return 0, 0, err
		}
	}
	phase("rollups")
	if _, err := b.bdb.ExecContext(ctx, "VACUUM ANALYZE surveys"); err != nil {
		return 0, 0, fmt.Errorf("analyze: %w", err)
	}
	phase("vacuum_analyze")
	return rows, time.Since(start), nil
}

// start runs the service in-process on a loopback port with the SMTP sink.
// withoutRLS restarts the service connected as the database owner, which
// row-level security does not restrict, runs the read scenarios again and
// restarts it as csat_app.
func (b *bench) withoutRLS(ctx context.Context) ([]result, error) {
	reads := map[string]bool{"list": true, "analytics_30d": true, "analytics_365d": true, "graphql_surveys": true}
	b.stopApp()
	b.sink.Close()
	b.asOwner = true
	err := b.start(ctx)
	b.asOwner = false
	if err != nil {
		return nil, err
	}
	out := b.scenarios(ctx, b.big, b.o.Duration/2, reads, "_norls")
	b.stopApp()
	b.sink.Close()
	return out, b.start(ctx)
}

func rlsCost(with, without []result) map[string]float64 {
	out := map[string]float64{}
	for _, n := range without {
		name := strings.TrimSuffix(n.Name, "_norls")
		for _, w := range with {
			if w.Name == name && w.RPS > 0 && n.RPS > 0 {
				out[name] = round(n.RPS/w.RPS, 2)
			}
		}
	}
	return out
}

func (b *bench) start(ctx context.Context) error {
	var err error
	if b.sink, err = startSink(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	b.url = "http://" + ln.Addr().String()
	vars := map[string]string{
		"DATABASE_URL":            b.o.DSN,
		"REDIS_URL":               b.o.RedisURL,
		"SMTP_URL":                b.sink.URL(),
		"PUBLIC_BASE_URL":         b.url,
		"CSAT_RECONCILE_INTERVAL": "1h", // the wave is driven by asynq, not the sweep
		"CSAT_AUTO_MIGRATE":       "false",
		"SHUTDOWN_TIMEOUT":        "5s",
		"LOG_LEVEL":               "warn",
		"RATE_LIMITS_ENABLED":     "false",
	}
	if b.asOwner {
		vars["APP_DATABASE_URL"] = b.o.DSN // the owner: row-level security does not apply
	}
	// Tuning variables (WORKER_CONCURRENCY, DB_MAX_CONNS, ...) come from the
	// environment, as for the real service.
	cfg, err := app.LoadConfig(func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return os.Getenv(k)
	})
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, b.log)
	if err != nil {
		return fmt.Errorf("start service: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- a.Serve(sctx, ln) }()
	b.app = a
	b.stopApp = func() {
		cancel()
		<-done
		a.Close()
		b.app = nil
	}
	return nil
}

func machine() string {
	model := "unknown CPU"
	if bs, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(bs), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	load := "unknown"
	if bs, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(bs)); len(f) > 0 {
			load = f[0]
		}
	}
	return fmt.Sprintf("%d cores (%s), %s/%s, %s, Postgres and Redis on the same host; load average %s when the run started",
		runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version(), load)
}

func printTable(w io.Writer, r report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tkind\treq/s\tp50 ms\tp95 ms\tp99 ms\tfloor req/s\tratio\terrors\t\n")
	line := func(s result) {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.0f\t%.2f\t%d\t\n", s.Name, s.Kind, s.RPS, s.P50, s.P95, s.P99, s.FloorRPS, s.Ratio, s.Errors)
	}
	for _, s := range r.Floors {
		line(s)
	}
	for _, s := range r.Scenarios {
		line(s)
	}
	for _, s := range r.Reference {
		line(s)
	}
	for _, s := range r.WithoutRLS {
		line(s)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nsurveys in measured tenant: %d (loaded %d rows in %.1fs)\n", r.Surveys, r.LoadedRows, r.LoadSeconds)
	for k, v := range r.Flatness {
		fmt.Fprintf(w, "flatness %s: p95 at %d / p95 at reference = %.2f\n", k, r.Surveys, v)
	}
	sw := r.SendWave
	fmt.Fprintf(w, "send wave: %d/%d emails in %.1fs after due; lateness p50 %.2fs p95 %.2fs max %.2fs\n",
		sw.Accepted, sw.Emails, sw.Seconds, sw.LatenessP50, sw.LatenessP95, sw.LatenessMax)
	if sw.Note != "" {
		fmt.Fprintln(w, "send wave note:", sw.Note)
	}
	if sp := r.SendWaveSpread; sp.Emails > 0 {
		fmt.Fprintf(w, "send wave due over %.0fs: %d/%d emails, the last %.1fs after the first was due; lateness p50 %.2fs p95 %.2fs max %.2fs\n",
			sp.SpreadS, sp.Accepted, sp.Emails, sp.Seconds, sp.LatenessP50, sp.LatenessP95, sp.LatenessMax)
	}
	if len(r.RLSCost) > 0 {
		names := slices.Sorted(maps.Keys(r.RLSCost))
		fmt.Fprint(w, "row-level security cost (req/s without / with):")
		for _, n := range names {
			fmt.Fprintf(w, " %s %.2f", n, r.RLSCost[n])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "peak RSS: %.1f MB (%s)\n", r.RSSMB, "bench process with the service in it")
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	for _, s := range append(r.Scenarios, r.Reference...) {
		if s.Note != "" {
			fmt.Fprintf(w, "%s: %s\n", s.Name, s.Note)
		}
	}
	fmt.Fprintln(w, "machine:", r.Machine)
}

// inParallel runs fns, n at a time, and returns the first error.
func inParallel(n int, fns []func() error) error {
	sem := make(chan struct{}, n)
	errc := make(chan error, len(fns))
	for _, fn := range fns {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errc <- fn()
		}()
	}
	var first error
	for range fns {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}
