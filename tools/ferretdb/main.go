// Command ferretdb runs FerretDB v1 with its SQLite backend for the project's tests and benches.
//
// It embeds FerretDB's public `ferretdb` package instead of building `cmd/ferretdb`: that main
// package panics unless built from FerretDB's own checkout (it needs a generated version.txt).
// The flags mirror cmd/ferretdb's, so a real FerretDB binary can stand in for this one.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	handler := flag.String("handler", "sqlite", "backend handler: sqlite or postgresql")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite URI (a directory) for the sqlite handler")
	postgresqlURL := flag.String("postgresql-url", "", "PostgreSQL URL for the postgresql handler")
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	// Accepted for cmd/ferretdb compatibility: the embedded server keeps state in memory
	// and never sends telemetry.
	flag.String("state-dir", ".", "ignored: state is kept in memory")
	flag.String("telemetry", "disable", "ignored: telemetry is always disabled")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: --log-level: %v\n", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	server, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listenAddr},
		Logger:        logger,
		Handler:       *handler,
		SQLiteURL:     *sqliteURL,
		PostgreSQLURL: *postgresqlURL,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "ferretdb: listening on %s\n", *listenAddr)
	if err := server.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}
}
