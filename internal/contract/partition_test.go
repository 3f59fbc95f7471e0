package contract

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var dayStation = Partitioning{{Name: "day", Period: Day}, {Name: "station"}}

func TestParsePartition(t *testing.T) {
	p, err := dayStation.Parse("2024-03-01|FR")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Time("day").Equal(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)) || p.Time("day").Location() != time.UTC {
		t.Errorf("day = %v", p.Time("day"))
	}
	if p.Value("station") != "FR" || p.Value("day") != "2024-03-01" || p.Values[1] != "FR" {
		t.Errorf("values = %v", p.Values)
	}
	if p.All() || !p.Time("station").IsZero() || p.Value("nope") != "" {
		t.Errorf("accessors on the wrong dimension: %v %v %q", p.All(), p.Time("station"), p.Value("nope"))
	}

	for period, id := range map[Period]string{Year: "2024", Month: "2024-03", Day: "2024-03-01", Hour: "2024-03-01-17"} {
		p, err := Partitioning{{Name: "t", Period: period}}.Parse(id)
		if err != nil {
			t.Errorf("%s %q: %v", period, id, err)
			continue
		}
		if got := p.Time("t").Format(periodLayouts[period]); got != id {
			t.Errorf("%s %q: round trip gives %q", period, id, got)
		}
	}

	all, err := dayStation.Parse("")
	if err != nil || !all.All() || !all.Time("day").IsZero() || all.Value("station") != "" {
		t.Errorf("empty id: %+v, %v", all, err)
	}
}

func TestParsePartitionErrors(t *testing.T) {
	for _, tc := range []struct {
		p    Partitioning
		id   string
		want string
	}{
		{dayStation, "2024-03-01", `malformed partition id "2024-03-01": want 2 values joined by "|" (day|station), got 1; for example "2024-03-01|<station>"`},
		{dayStation, "2024-03-01|FR|x", `got 3`},
		{dayStation, "2024-3-1|FR", `malformed partition id "2024-3-1|FR": dimension "day" (DAY) wants YYYY-MM-DD, got "2024-3-1"; for example "2024-03-01|<station>"`},
		{dayStation, "2024-02-30|FR", `dimension "day" (DAY) wants YYYY-MM-DD, got "2024-02-30"`},
		{dayStation, "2024-03-01| ", `dimension "station" (discrete) wants a non-empty value without |, got " "`},
		{Partitioning{{Name: "h", Period: Hour}}, "2024-03-01 17", `dimension "h" (HOUR) wants YYYY-MM-DD-HH`},
		{Partitioning{{Name: "h", Period: Hour}}, "2024-03-01-24", `got "2024-03-01-24"`},
		{Partitioning{{Name: "m", Period: Month}}, "2024-13", `dimension "m" (MONTH) wants YYYY-MM`},
		{Partitioning{{Name: "y", Period: Year}}, "24", `dimension "y" (YEAR) wants YYYY, got "24"`},
		{nil, "FR", `malformed partition id "FR": the dataset is not partitioned`},
	} {
		_, err := tc.p.Parse(tc.id)
		if !errors.Is(err, ErrBadPartitionID) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.id, err, tc.want)
		}
	}
}

func TestFormatPartition(t *testing.T) {
	day := time.Date(2024, 3, 1, 15, 4, 5, 0, time.UTC)
	id, err := dayStation.Format(day, "FR")
	if err != nil || id != "2024-03-01|FR" {
		t.Errorf("Format = %q, %v", id, err)
	}
	if id, err := dayStation.Format("2024-03-02", "DE"); err != nil || id != "2024-03-02|DE" {
		t.Errorf("Format from text = %q, %v", id, err)
	}
	for _, vals := range [][]any{{day}, {day, 7}, {day, day}, {"2024-3-2", "DE"}, {day, "A|B"}} {
		if id, err := dayStation.Format(vals...); err == nil {
			t.Errorf("Format(%v) = %q, want an error", vals, id)
		}
	}
}

func TestPartitioningValidate(t *testing.T) {
	if err := dayStation.Validate(); err != nil {
		t.Error(err)
	}
	for _, p := range []Partitioning{{{Name: ""}}, {{Name: "a"}, {Name: "a"}}, {{Name: "a|b"}}, {{Name: "a", Period: 9}}} {
		if err := p.Validate(); err == nil {
			t.Errorf("%v: no error", p)
		}
	}
	if got := dayStation.String(); got != "day (DAY) | station (discrete)" {
		t.Errorf("String = %q", got)
	}
}
