package postgres

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

// SQLType is the PostgreSQL type of a sluice column. XML is text: the xml
// type would reject malformed text that DuckDB keeps, and has no equality,
// so it could not be a key.
func SQLType(c destination.Column) string {
	switch c.Type {
	case contract.Boolean:
		return "boolean"
	case contract.Short:
		return "smallint"
	case contract.Int:
		return "integer"
	case contract.Long:
		return "bigint"
	case contract.Decimal:
		return fmt.Sprintf("numeric(%d,%d)", c.Precision, c.Scale)
	case contract.Float:
		return "real"
	case contract.Double:
		return "double precision"
	case contract.NaiveDate:
		return "date"
	case contract.NaiveDateTime:
		return "timestamp without time zone"
	case contract.UTCDateTime:
		return "timestamp with time zone"
	case contract.Binary:
		return "bytea"
	case contract.JSON:
		return "jsonb"
	}
	return "text" // STRING, XML
}

// parseSQLType reads a type as format_type renders it.
func parseSQLType(t string) (destination.Column, bool) {
	switch t {
	case "boolean":
		return destination.Column{Type: contract.Boolean}, true
	case "smallint":
		return destination.Column{Type: contract.Short}, true
	case "integer":
		return destination.Column{Type: contract.Int}, true
	case "bigint":
		return destination.Column{Type: contract.Long}, true
	case "real":
		return destination.Column{Type: contract.Float}, true
	case "double precision":
		return destination.Column{Type: contract.Double}, true
	case "date":
		return destination.Column{Type: contract.NaiveDate}, true
	case "timestamp without time zone":
		return destination.Column{Type: contract.NaiveDateTime}, true
	case "timestamp with time zone":
		return destination.Column{Type: contract.UTCDateTime}, true
	case "bytea":
		return destination.Column{Type: contract.Binary}, true
	case "jsonb":
		return destination.Column{Type: contract.JSON}, true
	case "text":
		return destination.Column{Type: contract.String}, true
	}
	// numeric(p,s); a numeric without them has no fixed scale, which
	// sluice's DECIMAL always has.
	if p, s, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(t, "numeric("), ")"), ","); ok && strings.HasPrefix(t, "numeric(") {
		pi, err1 := strconv.Atoi(p)
		si, err2 := strconv.Atoi(s)
		if err1 == nil && err2 == nil {
			return destination.Column{Type: contract.Decimal, Precision: pi, Scale: si}, true
		}
	}
	return destination.Column{}, false
}

// convertSQL converts expr, of column from's type, to column to's type, as
// ALTER COLUMN ... TYPE ... USING does when a column widens. A conversion
// to text renders each value as the engine renders a new value of that Go
// type (engine.toText), so that values cast here and values written later
// read alike in the widened column.
func convertSQL(expr string, from, to destination.Column) string {
	if SQLType(from) == SQLType(to) {
		return expr
	}
	if SQLType(to) != "text" {
		return "(" + expr + ")::" + SQLType(to)
	}
	switch from.Type {
	case contract.Float, contract.Double:
		return floatTextSQL("(" + expr + ")::text")
	case contract.Binary:
		return "pg_temp.sluice_bytea_text(" + expr + ")"
	case contract.JSON:
		return jsonTextSQL("(" + expr + ")::text")
	}
	// Booleans (true/false), integers, numeric with its scale, dates and
	// timestamps in ISO form, timestamptz at UTC with "+00": PostgreSQL's
	// own text is the engine's, given the session settings Open makes.
	return "(" + expr + ")::text"
}

// floatTextSQL turns PostgreSQL's text of a float (t: the shortest digits,
// "4" or "1e+15", "NaN", "Infinity") into the engine's floatText: fixed
// notation with at least one decimal for exponents from -4 to 15,
// scientific beyond, and nan, inf, -inf. PostgreSQL switches to scientific
// notation at exponent 15 for double precision and 6 for real; those are
// written out in full here.
func floatTextSQL(t string) string {
	digits := `regexp_replace(` + t + `, '^-|\.|e.*$', '', 'g')`
	exp := `(substring(` + t + ` from 'e\+([0-9]+)$'))::int`
	sign := `CASE WHEN left(` + t + `, 1) = '-' THEN '-' ELSE '' END`
	fixed := sign + ` || rpad(` + digits + `, ` + exp + ` + 1, '0') || '.' || coalesce(nullif(substr(` + digits + `, ` + exp + ` + 2), ''), '0')`
	return `(CASE WHEN ` + t + ` = 'NaN' THEN 'nan' WHEN ` + t + ` = 'Infinity' THEN 'inf' WHEN ` + t + ` = '-Infinity' THEN '-inf'` +
		` WHEN ` + t + ` ~ 'e\+' AND ` + exp + ` <= 15 THEN ` + fixed +
		` WHEN ` + t + ` ~ '[.e]' THEN ` + t +
		` ELSE ` + t + ` || '.0' END)`
}

// jsonTextSQL renders jsonb text compactly, as encoding/json writes JSON:
// jsonb's own text puts a space after every comma and colon outside
// strings, and nowhere else. Key order is jsonb's (shorter keys first),
// and the text of a value as it was sent is not kept: jsonb normalises it.
func jsonTextSQL(t string) string {
	return `regexp_replace(` + t + `, '("(?:[^"\\]|\\.)*"|[^",:]+|[,:]) ?', '\1', 'g')`
}

// byteaTextFunc is the conversion of bytea to text for a column widened
// from BINARY: the bytes as text when they are UTF-8 (what the engine
// writes for a []byte), else PostgreSQL's escaped form, as text cannot hold
// them. It lives in pg_temp: nothing stays behind in the database.
const byteaTextFunc = `CREATE OR REPLACE FUNCTION pg_temp.sluice_bytea_text(b bytea) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN convert_from(b, 'UTF8');
EXCEPTION WHEN others THEN
	RETURN encode(b, 'escape');
END $$`
