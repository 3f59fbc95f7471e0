// Package mysql is sluice's built-in MySQL and MariaDB source connector: it
// syncs tables of a MySQL or MariaDB server into any destination, written
// against the same SDK contract as any other connector (Connector returns a
// contract.Connector, that is an sdk.Connector).
//
// # Configuration
//
// Every value is a string (Params declares and checks them):
//
//	url              mysql://user:password@host:3306/database (mariadb:// too; query
//	                 parameters tls=true|skip-verify|preferred and timeout=10s, any other
//	                 one is set as a session variable), or a Go MySQL DSN such as
//	                 user:password@tcp(host:3306)/database. A secret: never logged, never
//	                 in an error (Secrets lists what to mask).
//	schemas          databases to sync, comma-separated. Default: the URL's database.
//	tables, exclude, modes, checkpoint_rows
//	                 as for the PostgreSQL connector (see its package documentation):
//	                 names, schema.name or patterns; modes "full_refresh" (the default)
//	                 or "incremental:<cursor column>".
//
// A table of the URL's database keeps its name in the warehouse; a table of
// another database is named database_table.
//
// Modes, checkpoints and resuming after a crash work as for PostgreSQL:
// full refresh in primary-key order (resumed after the last committed key),
// incremental in (cursor, key) order with >= after a complete read. There
// is no change capture for MySQL: deletes are seen by full refresh only.
//
// # Types
//
//	MySQL / MariaDB                     sluice
//	tinyint(1), bool, bit(1)            BOOLEAN (any value but 0 is true)
//	tinyint, tinyint unsigned, smallint SHORT
//	smallint unsigned, mediumint, int   INT
//	int unsigned, bigint                LONG
//	bigint unsigned                     DECIMAL(20,0)
//	bit(n), 1 < n < 64                  LONG; bit(64) DECIMAL(20,0)
//	decimal(p,s), p <= 38               DECIMAL(p,s)
//	decimal(p,s), p > 38                STRING, the exact digits
//	float                               FLOAT (read as a double: the text protocol gives
//	                                    FLOAT only six digits)
//	double                              DOUBLE
//	date                                NAIVE_DATE
//	datetime                            NAIVE_DATETIME
//	timestamp                           UTC_DATETIME (the session time zone is UTC)
//	year                                SHORT
//	time                                STRING
//	char, varchar, text types, enum,    STRING
//	set
//	binary, varbinary, blob types       BINARY
//	geometry types                      BINARY (MySQL's internal form: SRID and WKB)
//	json (MySQL), longtext with a       JSON
//	json_valid check (MariaDB's JSON)
//
// Zero dates ('0000-00-00', a zero month or day) become NULL, with one
// warning per column.
//
// # Reading
//
// Rows are streamed with an unbuffered query in the text protocol (position
// parameters interpolated by the driver, so the protocol does not change),
// each row read off the connection as it is emitted; memory is bounded by
// the engine's batch, never by the table.
package mysql
