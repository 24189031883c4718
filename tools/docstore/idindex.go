package main

// FerretDB v1 on SQLite pushes a find, update or delete by `_id` down to SQLite as
// `WHERE _ferretdb_sjson->'$._id' = ?`, but indexes `_id` on the expression `_ferretdb_sjson->"_id"`:
// SQLite cannot use that index for the query, so every lookup by `_id` scans the whole collection
// (83 ms at 20,000 documents). Until FerretDB matches the two, this program adds to each collection's
// table an index on the very expression of the query, checking for new tables every second. FerretDB
// does not know of these indexes (its listIndexes does not show them) and drops them with their table.

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

const idIndexSuffix = "_maille_id"

func keepIDIndexes(ctx context.Context, dir, synchronous string, logger *slog.Logger) {
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
		for _, file := range files {
			if err := indexFile(ctx, file, synchronous); err != nil && ctx.Err() == nil {
				logger.Warn("maille-docstore: _id index", slog.String("file", file), slog.String("error", err.Error()))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func indexFile(ctx context.Context, file, synchronous string) error {
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)&_pragma=synchronous("+synchronous+")")
	if err != nil {
		return err
	}
	defer db.Close()
	// The collections' tables that lack the index (a table dropped and made again lacks it again) —
	// but not the kit's outbox segments and consumer marks: written a lot, never read by one _id.
	rows, err := db.QueryContext(ctx, `SELECT c.table_name FROM _ferretdb_collections c
		WHERE c.name NOT LIKE 'outbox\_%' ESCAPE '\' AND c.name NOT IN ('events_claimed', 'events_done')
		AND EXISTS (SELECT 1 FROM sqlite_master t WHERE t.type = 'table' AND t.name = c.table_name)
		AND NOT EXISTS (SELECT 1 FROM sqlite_master i WHERE i.type = 'index' AND i.name = c.table_name || ?)`, idIndexSuffix)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") { // a database FerretDB has not set up yet
			return nil
		}
		return err
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, name)
	}
	rows.Close()
	// A passive checkpoint copies what the WAL holds into the database without waiting for, or blocking, writers.
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		return err
	}
	for _, table := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, table+idIndexSuffix, table)
		if _, err := db.ExecContext(ctx, q); err != nil {
			if strings.Contains(err.Error(), "no such table") || strings.Contains(err.Error(), "no such column") { // dropped meanwhile
				continue
			}
			return err
		}
	}
	return nil
}
