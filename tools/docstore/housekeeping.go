package main

// Housekeeping of the SQLite files, every second:
//
//   - A passive checkpoint: the WAL copied into the database without waiting for, or blocking, writers
//     (FerretDB's connections run with wal_autocheckpoint(0), so no write pays for it).
//   - Lookups by `_id`: FerretDB v1 on SQLite pushes a find, update or delete by `_id` down to SQLite as
//     `WHERE _ferretdb_sjson->'$._id' = ?` but indexes `_id` (unique) on `_ferretdb_sjson->"_id"`, an
//     expression SQLite cannot match to the query's: every lookup scanned the whole collection (83 ms at
//     20,000 documents). Earlier versions of this program added to each table a second index on the
//     query's expression (`<table>_maille_id`); every write then kept two indexes of the same `_id`. The
//     patch `id-lookup.patch` now queries by the unique index's own expression, and the second index,
//     where an earlier version left it, is dropped here.

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite"
)

const oldIDIndexSuffix = "_maille_id"

func keepFiles(ctx context.Context, dir, synchronous string, logger *slog.Logger) {
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
		for _, file := range files {
			if err := keepFile(ctx, file, synchronous); err != nil && ctx.Err() == nil {
				logger.Warn("maille-docstore: housekeeping", slog.String("file", file), slog.String("error", err.Error()))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func keepFile(ctx context.Context, file, synchronous string) error {
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)&_pragma=synchronous("+synchronous+")")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE ? ESCAPE '\'`,
		`%`+strings.ReplaceAll(oldIDIndexSuffix, "_", `\_`))
	if err != nil {
		return err
	}
	var old []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		old = append(old, name)
	}
	rows.Close()
	for _, name := range old {
		if _, err := db.ExecContext(ctx, fmt.Sprintf(`DROP INDEX IF EXISTS %q`, name)); err != nil {
			if strings.Contains(err.Error(), "no such") { // dropped meanwhile
				continue
			}
			return err
		}
	}
	return nil
}
