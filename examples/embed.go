// Package examples holds the example connectors; `sluice init` copies them.
package examples

import "embed"

// FS holds every example's sources, one folder each.
//
//go:embed all:hello all:three-operations all:incremental-cursor all:multiple-tables all:schema-change all:dataset-readings all:dataset-csv
var FS embed.FS
