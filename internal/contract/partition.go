package contract

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Period is the granularity of a time dimension. Discrete, the zero value,
// marks a dimension whose values are plain strings, such as a country code.
type Period uint8

const (
	Discrete Period = iota
	Year
	Month
	Day
	Hour
)

// periodLayouts are the Go layouts of time values in a partition id, and
// periodPatterns what error messages call them.
var (
	periodNames    = [...]string{Discrete: "discrete", Year: "YEAR", Month: "MONTH", Day: "DAY", Hour: "HOUR"}
	periodLayouts  = [...]string{Year: "2006", Month: "2006-01", Day: "2006-01-02", Hour: "2006-01-02-15"}
	periodPatterns = [...]string{Discrete: "a non-empty value without |", Year: "YYYY", Month: "YYYY-MM", Day: "YYYY-MM-DD", Hour: "YYYY-MM-DD-HH"}
)

func (p Period) String() string {
	if int(p) < len(periodNames) {
		return periodNames[p]
	}
	return fmt.Sprintf("Period(%d)", uint8(p))
}

// Dimension is one axis of a dataset's partitioning.
type Dimension struct {
	Name   string
	Period Period // Discrete (the zero value), Year, Month, Day or Hour
}

func (d Dimension) String() string { return d.Name + " (" + d.Period.String() + ")" }

// Partitioning lists a dataset's dimensions, in the order their values
// appear in a partition id. Empty means the dataset is not partitioned.
type Partitioning []Dimension

// PartitionSeparator joins the values of a partition id.
const PartitionSeparator = "|"

// ErrBadPartitionID is wrapped by every error about a malformed partition
// id, so callers can tell a user's typo from a failing source.
var ErrBadPartitionID = errors.New("malformed partition id")

// Validate checks the declaration itself: names present and distinct,
// periods known.
func (p Partitioning) Validate() error {
	seen := map[string]bool{}
	for i, d := range p {
		switch {
		case d.Name == "":
			return fmt.Errorf("partitioning: dimension %d has no name", i+1)
		case strings.Contains(d.Name, PartitionSeparator):
			return fmt.Errorf("partitioning: dimension name %q contains %q", d.Name, PartitionSeparator)
		case seen[d.Name]:
			return fmt.Errorf("partitioning: two dimensions are named %q", d.Name)
		case int(d.Period) >= len(periodNames):
			return fmt.Errorf("partitioning: dimension %q has an unknown period %d", d.Name, d.Period)
		}
		seen[d.Name] = true
	}
	return nil
}

// Example is a valid id, shown in error messages so the fix is obvious:
// time values for 1 March 2024, discrete values as <name>.
func (p Partitioning) Example() string {
	ex := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	parts := make([]string, len(p))
	for i, d := range p {
		if d.Period == Discrete {
			parts[i] = "<" + d.Name + ">"
		} else {
			parts[i] = ex.Format(periodLayouts[d.Period])
		}
	}
	return strings.Join(parts, PartitionSeparator)
}

func (p Partitioning) String() string {
	if len(p) == 0 {
		return "not partitioned"
	}
	parts := make([]string, len(p))
	for i, d := range p {
		parts[i] = d.String()
	}
	return strings.Join(parts, " | ")
}

// Parse validates a partition id and returns its typed values. The empty id
// is the whole dataset, partitioned or not.
func (p Partitioning) Parse(id string) (Partition, error) {
	if id == "" {
		return Partition{dims: p}, nil
	}
	if len(p) == 0 {
		return Partition{}, fmt.Errorf("%w %q: the dataset is not partitioned, so there is no partition to name", ErrBadPartitionID, id)
	}
	texts := strings.Split(id, PartitionSeparator)
	if len(texts) != len(p) {
		names := make([]string, len(p))
		for i, d := range p {
			names[i] = d.Name
		}
		want := fmt.Sprintf("want %d values joined by %q (%s)", len(p), PartitionSeparator, strings.Join(names, PartitionSeparator))
		if len(p) == 1 {
			want = fmt.Sprintf("want one value (%s), without %q", p[0].Name, PartitionSeparator)
		}
		return Partition{}, fmt.Errorf("%w %q: %s, got %d; for example %q", ErrBadPartitionID, id, want, len(texts), p.Example())
	}
	part := Partition{ID: id, Values: make([]any, len(p)), texts: texts, dims: p}
	for i, d := range p {
		v, err := d.parse(texts[i])
		if err != nil {
			return Partition{}, fmt.Errorf("%w %q: dimension %q (%s) wants %s, got %q; for example %q",
				ErrBadPartitionID, id, d.Name, d.Period, periodPatterns[d.Period], texts[i], p.Example())
		}
		part.Values[i] = v
	}
	return part, nil
}

func (d Dimension) parse(s string) (any, error) {
	if d.Period == Discrete {
		if strings.TrimSpace(s) == "" {
			return nil, errors.New("empty")
		}
		return s, nil
	}
	t, err := time.Parse(periodLayouts[d.Period], s)
	// time.Parse accepts some non-canonical forms; an id must have exactly
	// one spelling, or the same partition would have two names.
	if err != nil || t.Format(periodLayouts[d.Period]) != s {
		return nil, errors.New("bad time")
	}
	return t, nil
}

// Format builds a partition id from one value per dimension: a time.Time
// (formatted in its own location) or its text for a time dimension, a
// string for a discrete one. The result is validated as Parse would.
func (p Partitioning) Format(values ...any) (string, error) {
	if len(values) != len(p) {
		return "", fmt.Errorf("format partition id: %d values for %d dimensions (%s)", len(values), len(p), p)
	}
	parts := make([]string, len(p))
	for i, d := range p {
		switch v := values[i].(type) {
		case time.Time:
			if d.Period == Discrete {
				return "", fmt.Errorf("format partition id: dimension %q is discrete: pass a string, not a time", d.Name)
			}
			parts[i] = v.Format(periodLayouts[d.Period])
		case string:
			parts[i] = v
		default:
			return "", fmt.Errorf("format partition id: dimension %q: want a string or a time.Time, got %T", d.Name, v)
		}
	}
	id := strings.Join(parts, PartitionSeparator)
	if _, err := p.Parse(id); err != nil {
		return "", err
	}
	return id, nil
}

// Partition is a parsed partition id. The zero Partition (empty ID) stands
// for the whole dataset.
type Partition struct {
	ID string
	// Values holds one value per dimension: a time.Time in UTC at the start
	// of the period for a time dimension, a string for a discrete one.
	Values []any
	texts  []string
	dims   Partitioning
}

// All reports whether p is the whole dataset rather than one partition.
func (p Partition) All() bool { return p.ID == "" }

func (p Partition) index(dim string) int {
	for i, d := range p.dims {
		if d.Name == dim {
			return i
		}
	}
	return -1
}

// Time returns a time dimension's value: the start of the period, in UTC.
// It is the zero time for the whole dataset or a dimension that is not a
// time one.
func (p Partition) Time(dim string) time.Time {
	if i := p.index(dim); i >= 0 && !p.All() {
		if t, ok := p.Values[i].(time.Time); ok {
			return t
		}
	}
	return time.Time{}
}

// Value returns a dimension's value as it appears in the id ("FR",
// "2024-03-01"); empty for the whole dataset.
func (p Partition) Value(dim string) string {
	if i := p.index(dim); i >= 0 && !p.All() {
		return p.texts[i]
	}
	return ""
}
