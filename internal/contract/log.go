package contract

import (
	"context"
	"log/slog"
)

// The four connector log levels, on slog's scale: FINE is slog's Debug,
// SEVERE its Error.
const (
	LevelFine    = slog.LevelDebug
	LevelInfo    = slog.LevelInfo
	LevelWarning = slog.LevelWarn
	LevelSevere  = slog.LevelError
)

// LevelName gives the connector-facing name of a slog level.
func LevelName(l slog.Level) string {
	switch {
	case l < LevelInfo:
		return "FINE"
	case l < LevelWarning:
		return "INFO"
	case l < LevelSevere:
		return "WARNING"
	default:
		return "SEVERE"
	}
}

// Log writes one record through slog's default logger, which the runtime
// points at the console and the warehouse log table for the run.
func Log(level slog.Level, msg string, err error, args ...any) {
	if err != nil {
		args = append(args, slog.String("error", err.Error()))
	}
	slog.Default().Log(context.Background(), level, msg, args...)
}
