package postgres

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// scrub removes a password from a message: pgx quotes connection strings
// in some of its errors, and a password must never reach a log.
func scrub(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "***")
}

// scrubbed is an error whose text has the password taken out; errors.Is and
// errors.As still see what it wraps.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// scrub returns err with its text scrubbed. The result also marks err as
// explained, so that explain adds its advice once.
func (d *DB) scrub(err error) error {
	return &scrubbed{msg: scrub(err.Error(), d.secret), err: err}
}

// connectError says why a connection failed and what to check.
func (d *DB) connectError(err error) error {
	addr := fmt.Sprintf("%s:%d", d.cfg.Host, d.cfg.Port)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01":
			return d.scrub(fmt.Errorf("PostgreSQL at %s refused the password of role %q: check the user and password in the destination URL: %w", addr, d.cfg.User, err))
		case "28000":
			return d.scrub(fmt.Errorf("PostgreSQL at %s does not let role %q connect to database %q (%s): check the user in the destination URL, that the role exists (CREATE ROLE ... LOGIN), and the server's pg_hba.conf: %w", addr, d.cfg.User, d.cfg.Database, pe.Message, err))
		case "3D000":
			return d.scrub(fmt.Errorf("database %q does not exist on PostgreSQL at %s: create it (CREATE DATABASE %s) or fix the database name in the destination URL: %w", d.cfg.Database, addr, quote(d.cfg.Database), err))
		case "42501":
			return d.scrub(fmt.Errorf("role %q may not connect to database %q on %s: grant it with GRANT CONNECT ON DATABASE %s TO %s: %w", d.cfg.User, d.cfg.Database, addr, quote(d.cfg.Database), quote(d.cfg.User), err))
		}
		return d.scrub(fmt.Errorf("connect to PostgreSQL at %s as %q: %w", addr, d.cfg.User, err))
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return d.scrub(fmt.Errorf("cannot connect to PostgreSQL at %s: connection refused: check that the server is running and listens there (host and port of the destination URL), and that no firewall is in the way: %w", addr, err))
	case errors.As(err, &dnsErr):
		return d.scrub(fmt.Errorf("cannot connect to PostgreSQL at %s: the host name %q does not resolve: check the host of the destination URL: %w", addr, d.cfg.Host, err))
	case errors.Is(err, syscall.ETIMEDOUT) || isTimeout(err):
		return d.scrub(fmt.Errorf("cannot connect to PostgreSQL at %s: no answer in time: check the host and port of the destination URL and the network: %w", addr, err))
	}
	return d.scrub(fmt.Errorf("connect to PostgreSQL at %s as %q: %w", addr, d.cfg.User, err))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// explain adds what to do to the server errors a user can act on, and
// takes any password out.
func (d *DB) explain(err error) error {
	var done *scrubbed
	if err == nil || errors.As(err, &done) {
		return err
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return d.scrub(err)
	}
	user, db, schema := quote(d.cfg.User), quote(d.cfg.Database), quote(d.schema)
	var advice string
	switch pe.Code {
	case "42501": // insufficient_privilege
		switch {
		case strings.Contains(pe.Message, "permission denied for database"):
			advice = fmt.Sprintf("role %s may not create schema %s in database %s: have an administrator run GRANT CREATE ON DATABASE %s TO %s, or create the schema for it (CREATE SCHEMA %s AUTHORIZATION %s)",
				user, schema, db, db, user, schema, user)
		case strings.Contains(pe.Message, "permission denied for schema"):
			advice = fmt.Sprintf("role %s lacks privileges on schema %s: have an administrator run GRANT USAGE, CREATE ON SCHEMA %s TO %s", user, schema, schema, user)
		case strings.Contains(pe.Message, "permission denied for table"), strings.Contains(pe.Message, "permission denied for relation"):
			advice = fmt.Sprintf("role %s lacks privileges on a table of schema %s: have an administrator run GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO %s", user, schema, schema, user)
		case strings.Contains(pe.Message, "must be owner"):
			advice = fmt.Sprintf("changing a table's columns needs its owner: make %s the owner of the tables in schema %s (ALTER TABLE ... OWNER TO %s)", user, schema, user)
		default:
			advice = fmt.Sprintf("role %s lacks a privilege in database %s", user, db)
		}
	case "42P01": // undefined_table
		advice = fmt.Sprintf("a table of schema %s is missing (dropped while sluice ran?): run again, or drop the schema to sync from scratch", schema)
	case "22021", "22P05": // bad encoding, untranslatable character
		advice = "PostgreSQL text cannot hold NUL bytes or invalid UTF-8: send such values as bytes ([]byte, a BINARY column)"
	case "53100": // disk_full
		advice = "the database server's disk is full"
	case "57014": // query_canceled
		advice = "the statement was cancelled"
	}
	if pe.Where != "" {
		err = fmt.Errorf("%w (%s)", err, pe.Where)
	}
	if advice != "" {
		err = fmt.Errorf("%w: %s", err, advice)
	}
	return d.scrub(err)
}
