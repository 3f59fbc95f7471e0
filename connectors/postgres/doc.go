// Package postgres is sluice's built-in PostgreSQL source connector: it
// syncs tables of a PostgreSQL database into any destination, written
// against the same SDK contract as any other connector (Connector returns a
// contract.Connector, that is an sdk.Connector).
//
// # Configuration
//
// Every value is a string, as in every sluice configuration (Params
// declares and checks them):
//
//	url              postgres://user:password@host:5432/database?sslmode=... (or a
//	                 key=value connection string). A secret: never logged, never in an
//	                 error, never in the warehouse (Secrets lists what to mask).
//	schemas          schemas to sync, comma-separated. Default: public.
//	tables           tables to sync, comma-separated: name, schema.name, or patterns
//	                 with * and ? (orders_*, sales.*). Default: every table of the
//	                 schemas. Views and materialized views come only when a name
//	                 without wildcards names them. Partitions are read through their
//	                 parent. A name without wildcards that matches nothing is an error.
//	exclude          tables to leave out, same forms.
//	modes            per-table modes, a JSON object: {"orders": "incremental:updated_at",
//	                 "sales.*": "full_refresh"}. Keys are names or patterns; an exact
//	                 schema.name beats an exact name, which beats a pattern (the one with
//	                 more literal characters wins).
//	checkpoint_rows  rows between checkpoints. Default 100000.
//	replication      "pgoutput" to capture changes, deletes included, by logical
//	                 replication; "none" (the default).
//	publication      the publication of the replicated tables, created if missing (and
//	                 given the tables it lacks). Default "sluice".
//	slot             the replication slot, one per connector, created if missing.
//	                 Default "sluice".
//
// # Warehouse names
//
// A table of the public schema keeps its name; a table of another schema is
// named schema_table, so that names do not change when schemas are added.
// The engine then normalises names (lower snake_case). Two tables that end
// up with one name are an error.
//
// # Modes
//
// full_refresh (the default without replication) reads the whole table each
// sync, after a Truncate: rows gone from the source end up soft-deleted. A
// table with a primary key is read in key order, and a sync cut short (a
// crash, an error, Ctrl-C) resumes after the last committed key without a
// second truncate; a table without a key starts over. Tables done in a
// cut-short sync are not read again by the sync that resumes it.
//
// incremental:<column> reads the rows whose cursor column is at or past the
// value the last sync reached, in (cursor, key) order, and checkpoints the
// position every checkpoint_rows rows. After a complete read the next sync
// reads from the last value on (>=): rows sharing it are read again (their
// upserts change nothing) so that rows given that value later are not
// missed. After a checkpoint in the middle of a table it resumes strictly
// after (cursor, key), so that many rows sharing one value cannot stall it.
// Rows whose cursor is NULL are read by the first sync only. Incremental
// mode does not see deletes, nor rows committed late with a cursor value
// below the position (a long transaction that set updated_at at its start):
// use replication for those. A cursor column is a number, date, timestamp,
// text or uuid column. A table without a key is keyed by _sluice_id; read
// incrementally, it re-reads every row at the last cursor value.
//
// Tables without a primary key are keyed by _sluice_id, a hash of the whole
// row: two equal rows are one warehouse row.
//
// # Logical replication
//
// With replication "pgoutput" (the server needs wal_level = logical; the
// user the REPLICATION attribute, or to be superuser, and ownership of the
// tables to create the publication), every table that can be replicated
// defaults to it: tables with a primary key as replica identity, or with
// REPLICA IDENTITY FULL. Other tables are fully refreshed each sync (with a
// warning), as are views. The first sync creates the slot with an exported
// snapshot and reads the tables in it; later syncs stream inserts, updates
// and deletes (deletes become soft deletes, TRUNCATE a truncate) up to where
// the server's WAL stood when the stream began. See replication.go for how
// positions are kept and acknowledged: the slot is acknowledged only up to
// a position that a committed checkpoint holds, so a crash replays and never
// loses. A column added to a replicated table mid-stream ends the sync at the
// last whole transaction; the next one declares the column and goes on.
// Values of columns dropped since are not synced. Generated columns, which
// the stream does not carry, are left out of replicated tables. Drop the
// slot (SELECT pg_drop_replication_slot('sluice')) when the connector is
// retired: a slot keeps the server's WAL until it is acknowledged.
//
// # Types
//
//	PostgreSQL                                  sluice
//	boolean                                     BOOLEAN
//	smallint                                    SHORT
//	integer                                     INT
//	bigint, oid, xid                            LONG
//	real                                        FLOAT
//	double precision                            DOUBLE
//	numeric(p,s), p <= 38                       DECIMAL(p,s) (a negative scale s: DECIMAL(p-s,0))
//	numeric(p,s), p > 38                        STRING, the exact digits
//	numeric without precision                   not declared: sent as exact decimals, the engine
//	                                            makes it DECIMAL(38, s) with s the largest scale seen,
//	                                            STRING past 38 digits
//	date                                        NAIVE_DATE
//	timestamp                                   NAIVE_DATETIME
//	timestamptz                                 UTC_DATETIME
//	bytea                                       BINARY
//	json, jsonb                                 JSON
//	xml                                         XML
//	arrays (any element type, any dimensions)   JSON arrays: numbers and booleans as such, NULL as
//	                                            null, json elements as JSON, others as strings
//	uuid                                        STRING (lower case)
//	text, varchar, char(n), name                STRING (char(n) blank-padded, as stored)
//	enums, time, timetz, interval, money, inet, STRING, PostgreSQL's text of the value
//	cidr, macaddr, bit, tsvector, ranges,
//	geometric, composite and other types
//	domains                                     as their base type
//
// Values sluice has no type for become NULL, with one warning per column:
// ±infinity dates and timestamps, NaN and ±Infinity numerics (float NaN and
// infinities are kept). Text forms are read with DateStyle ISO, TimeZone
// UTC, IntervalStyle postgres and bytea_output hex, set by the connector.
//
// # Reading
//
// Rows are streamed: COPY (SELECT ...) TO STDOUT (FORMAT binary) by default,
// or an extended-protocol query read row by row (Options.Read); memory is
// bounded by the connection's buffer and the engine's batch, never by the
// table. Native types are read in binary; others as their text.
package postgres
