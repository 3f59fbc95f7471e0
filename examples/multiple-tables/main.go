// Command multiple-tables declares several related tables in Schema, with
// explicit types where inference would guess wrong: money as DECIMAL (a float
// would lose cents), dates without a time as NAIVE_DATE, instants as
// UTC_DATETIME, and nested objects as JSON. One table has a composite primary
// key: an order line is identified by its order and its line number.
//
// The source is a small snapshot sent whole on every sync; upserts by primary
// key make sending it again harmless, so the state has nothing to remember.
package main

import (
	"context"
	"time"

	"github.com/sluicedata/sluice/sdk"
)

func schema(ctx context.Context, cfg sdk.Config) ([]sdk.Table, error) {
	return []sdk.Table{
		{
			Name:       "customer",
			PrimaryKey: []string{"customer_id"},
			Columns: []sdk.Column{
				{Name: "customer_id", Type: sdk.Long},
				{Name: "name", Type: sdk.String},
				{Name: "signup_date", Type: sdk.NaiveDate},
				{Name: "credit_limit", Type: sdk.DecimalType, Precision: 12, Scale: 2},
				{Name: "preferences", Type: sdk.JSON},
			},
		},
		{
			Name:       "order",
			PrimaryKey: []string{"order_id"},
			Columns: []sdk.Column{
				{Name: "order_id", Type: sdk.Long},
				{Name: "customer_id", Type: sdk.Long},
				{Name: "placed_at", Type: sdk.UTCDateTime},
				{Name: "total", Type: sdk.DecimalType, Precision: 10, Scale: 2},
				{Name: "shipping_address", Type: sdk.JSON},
			},
		},
		{
			Name:       "order_line",
			PrimaryKey: []string{"order_id", "line_no"},
			Columns: []sdk.Column{
				{Name: "order_id", Type: sdk.Long},
				{Name: "line_no", Type: sdk.Int},
				{Name: "sku", Type: sdk.String},
				{Name: "quantity", Type: sdk.Int},
				{Name: "unit_price", Type: sdk.DecimalType, Precision: 10, Scale: 2},
			},
		},
	}, nil
}

func update(ctx context.Context, cfg sdk.Config, state sdk.State, ops sdk.Ops) error {
	customers := []map[string]any{
		// A NAIVE_DATE takes "YYYY-MM-DD" text or a time.Time (its date is
		// kept); a JSON column takes maps, slices, or text that is JSON.
		{"customer_id": 1, "name": "Ada", "signup_date": "2023-11-05", "credit_limit": sdk.Decimal("5000.00"),
			"preferences": map[string]any{"newsletter": true, "language": "en"}},
		{"customer_id": 2, "name": "Grace", "signup_date": time.Date(2024, 1, 20, 0, 0, 0, 0, time.UTC), "credit_limit": sdk.Decimal("250.50"),
			"preferences": `{"newsletter": false}`},
	}
	orders := []map[string]any{
		// A UTC_DATETIME takes a time.Time in any zone, or RFC 3339 text
		// with an offset; both are stored as the same instant in UTC.
		{"order_id": 100, "customer_id": 1, "placed_at": time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC), "total": sdk.Decimal("59.97"),
			"shipping_address": map[string]any{"city": "London", "lines": []string{"12 Analytical Row"}}},
		{"order_id": 101, "customer_id": 2, "placed_at": "2024-03-02T18:15:00+02:00", "total": sdk.Decimal("12.50"),
			"shipping_address": nil},
	}
	lines := []map[string]any{
		{"order_id": 100, "line_no": 1, "sku": "PEN-01", "quantity": 3, "unit_price": sdk.Decimal("9.99")},
		{"order_id": 100, "line_no": 2, "sku": "INK-07", "quantity": 2, "unit_price": sdk.Decimal("15.00")},
		{"order_id": 101, "line_no": 1, "sku": "PAD-02", "quantity": 1, "unit_price": sdk.Decimal("12.50")},
	}
	for _, t := range []struct {
		name string
		rows []map[string]any
	}{{"customer", customers}, {"order", orders}, {"order_line", lines}} {
		for _, row := range t.rows {
			if err := ops.Upsert(t.name, row); err != nil {
				return err
			}
		}
	}
	// One checkpoint commits all three tables together: the warehouse never
	// shows order lines without their order.
	return ops.Checkpoint(map[string]any{})
}

func main() {
	sdk.Main(sdk.Connector{Name: "multiple_tables", Update: update, Schema: schema})
}
