// Command dataset-readings is a read-only dataset connector: hourly
// temperature readings, generated, partitioned by day and by station
// (partition ids like 2024-03-01|PAR). The stations are a resource shipped
// inside the program.
//
//	go run . describe
//	go run . partitions
//	go run . read --partition '2024-03-01|PAR' --limit 5
package main

import (
	"context"
	"embed"
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sluicedata/sluice/sdk"
)

//go:embed resources
var resources embed.FS

type station struct {
	code, name string
	base       float64 // the temperature at 15:00 on a day of year divisible by 5
}

// stations reads the embedded station list once; a bad file is a bug in the
// program, not in the configuration.
var stations = sync.OnceValue(func() []station {
	f, err := resources.Open("resources/stations.csv")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		panic(fmt.Errorf("resources/stations.csv: %w", err))
	}
	var out []station
	for _, r := range recs[1:] {
		base, err := strconv.ParseFloat(r[2], 64)
		if err != nil {
			panic(fmt.Errorf("resources/stations.csv: %w", err))
		}
		out = append(out, station{r[0], r[1], base})
	}
	return out
})

type readings struct{}

var partitioning = sdk.Partitioning{{Name: "day", Period: sdk.Day}, {Name: "station"}}

func (readings) Info() sdk.DatasetInfo {
	var codes []string
	for _, s := range stations() {
		codes = append(codes, s.code)
	}
	return sdk.DatasetInfo{
		Name: "readings",
		Params: sdk.Params{
			{Name: "start", Label: "First day (YYYY-MM-DD)", Default: "2024-03-01"},
			{Name: "days", Label: "Number of days", Type: sdk.ParamInt, Default: "3"},
			{Name: "stations", Label: "Stations", Type: sdk.ParamMultiSelect, Choices: codes, Default: "BER,PAR,ROM"},
			{Name: "unit", Label: "Unit", Type: sdk.ParamSelect, Choices: []string{"celsius", "fahrenheit"}, Default: "celsius"},
		},
		Partitioning: partitioning,
		Resources:    resources,
	}
}

// settings is the configuration, read as its parameters declare it.
type settings struct {
	start      time.Time
	days       int
	stations   []station
	fahrenheit bool
}

func load(cfg sdk.Config) (settings, error) {
	var s settings
	var err error
	if s.start, err = time.Parse(time.DateOnly, cfg["start"]); err != nil {
		return s, fmt.Errorf("parameter \"start\": %q is not a date like 2024-03-01", cfg["start"])
	}
	days, err := cfg.Int("days")
	if err != nil || days < 1 || days > 3660 {
		return s, fmt.Errorf("parameter \"days\": want 1 to 3660 days, got %q", cfg["days"])
	}
	s.days = int(days)
	for _, code := range cfg.List("stations") {
		i := slices.IndexFunc(stations(), func(st station) bool { return st.code == code })
		s.stations = append(s.stations, stations()[i]) // Validate checked the code
	}
	s.fahrenheit = cfg["unit"] == "fahrenheit"
	return s, nil
}

// find returns the station of a partition, and whether the partition exists.
func (s settings) find(p sdk.Partition) (station, bool) {
	day := p.Time("day")
	if day.Before(s.start) || !day.Before(s.start.AddDate(0, 0, s.days)) {
		return station{}, false
	}
	i := slices.IndexFunc(s.stations, func(st station) bool { return st.code == p.Value("station") })
	if i < 0 {
		return station{}, false
	}
	return s.stations[i], true
}

func (readings) ReadSchema(ctx context.Context, cfg sdk.Config) ([]sdk.Column, error) {
	return []sdk.Column{
		{Name: "time", Type: sdk.UTCDateTime},
		{Name: "station", Type: sdk.String},
		{Name: "station_name", Type: sdk.String},
		{Name: "temperature", Type: sdk.Double},
	}, nil
}

func (readings) ReadRows(ctx context.Context, req sdk.ReadRequest, emit func(sdk.Row) error) error {
	s, err := load(req.Config)
	if err != nil {
		return err
	}
	type part struct {
		day time.Time
		st  station
	}
	var parts []part
	if req.Partition.All() {
		for d := range s.days {
			for _, st := range s.stations {
				parts = append(parts, part{s.start.AddDate(0, 0, d), st})
			}
		}
	} else {
		st, ok := s.find(req.Partition)
		if !ok {
			return fmt.Errorf("no partition %s: the configuration has %d days from %s and stations %s", req.Partition.ID, s.days, s.start.Format(time.DateOnly), req.Config["stations"])
		}
		parts = append(parts, part{req.Partition.Time("day"), st})
	}
	sdk.Fine("readings: generating", "partitions", len(parts))
	for _, p := range parts {
		for h := range 24 {
			t := temperature(p.st.base, p.day, h)
			if s.fahrenheit {
				t = t*9/5 + 32
			}
			row := sdk.Row{"time": p.day.Add(time.Duration(h) * time.Hour), "station": p.st.code, "station_name": p.st.name, "temperature": t}
			if err := emit(row); err != nil {
				return err // the limit, or the runtime giving up
			}
		}
	}
	return nil
}

// temperature is coolest before dawn, warmest at 15:00, and a little warmer
// each day of a five-day cycle. Halves only: exact in a float.
func temperature(base float64, day time.Time, hour int) float64 {
	from15 := hour - 15
	if from15 < 0 {
		from15 = -from15
	}
	return base + float64(day.YearDay()%5) - 0.5*float64(from15)
}

func (readings) ListPartitions(ctx context.Context, cfg sdk.Config) ([]string, error) {
	s, err := load(cfg)
	if err != nil {
		return nil, err
	}
	var ids []string
	for d := range s.days {
		for _, st := range s.stations {
			id, err := partitioning.Format(s.start.AddDate(0, 0, d), st.code)
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (readings) PartitionExists(ctx context.Context, cfg sdk.Config, p sdk.Partition) (bool, error) {
	s, err := load(cfg)
	if err != nil {
		return false, err
	}
	_, ok := s.find(p)
	return ok, nil
}

func (readings) CountRecords(ctx context.Context, cfg sdk.Config, p sdk.Partition) (int64, error) {
	s, err := load(cfg)
	if err != nil {
		return 0, err
	}
	if p.All() {
		return int64(s.days * len(s.stations) * 24), nil
	}
	if _, ok := s.find(p); !ok {
		return 0, nil
	}
	return 24, nil
}

func main() { sdk.MainDataset(readings{}) }
