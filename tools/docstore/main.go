// Command maille-docstore runs FerretDB v1 (the MongoDB wire protocol) on SQLite,
// embedded, so that `make run` and the tests have a real MongoDB-wire docstore
// on a machine without a MongoDB server.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only when -debug-listen is given
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/FerretDB/FerretDB/build/version"
	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data", ".var/docstore", "directory for the SQLite files")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	// WAL with synchronous=NORMAL: a commit survives the process crashing, not the machine losing
	// power; right for a developer's or CI's store, and several times faster than FULL.
	synchronous := flag.String("synchronous", "normal", "SQLite synchronous pragma: normal or full")
	// FerretDB allocates for every document it turns to and from JSON; at Go's default (GOGC=100)
	// the collector takes a good share of a bulk write's CPU. Collecting only when the heap nears a
	// soft limit made the directory's full import ~10% faster (bench/RESULTS.md). GOGC / GOMEMLIMIT
	// in the environment win over these flags.
	gcPercent := flag.Int("gc-percent", -1, "Go GC target percentage (-1: collect only near -memory-limit)")
	memoryLimit := flag.Int64("memory-limit-mb", 1024, "soft memory limit of the process, in MiB")
	debugListen := flag.String("debug-listen", "", "serve Go's profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 (off if empty)")
	flag.Parse()

	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		if *memoryLimit <= 0 {
			fmt.Fprintf(os.Stderr, "maille-docstore: bad -memory-limit-mb %d: must be positive\n", *memoryLimit)
			os.Exit(2)
		}
		debug.SetMemoryLimit(*memoryLimit << 20)
		debug.SetGCPercent(*gcPercent)
	}

	if *synchronous != "normal" && *synchronous != "full" {
		fmt.Fprintf(os.Stderr, "maille-docstore: bad -synchronous %q: normal or full\n", *synchronous)
		os.Exit(2)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "maille-docstore: bad -log-level %q: %v\n", *logLevel, err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	dir, err := filepath.Abs(*dataDir)
	if err == nil {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "maille-docstore: data directory %q: %v\n", *dataDir, err)
		os.Exit(1)
	}

	// Built as a module dependency, FerretDB does not know its own version: tell it, for buildInfo.
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/FerretDB/FerretDB" {
				version.Get().Version = dep.Version
			}
		}
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		// Checkpoints off the write path: a write that crosses SQLite's automatic checkpoint threshold would copy
		// the WAL into the database itself (tens of ms); keepFiles checkpoints every second instead.
		SQLiteURL: "file:" + dir + "/?_pragma=synchronous(" + *synchronous + ")&_pragma=wal_autocheckpoint(0)",
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "maille-docstore: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(os.Stderr, "maille-docstore: MongoDB wire protocol on %s (SQLite in %s)\n", *listen, dir)
	if *debugListen != "" {
		go func() {
			// Where the docstore's CPU goes under a load: `go tool pprof http://<address>/debug/pprof/profile?seconds=20`.
			if err := http.ListenAndServe(*debugListen, nil); err != nil {
				logger.Error("debug listener", "error", err)
			}
		}()
	}
	go keepFiles(ctx, dir, *synchronous, logger) // checkpoints (see housekeeping.go)
	if err := f.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "maille-docstore: %v\n", err)
		os.Exit(1)
	}
}
