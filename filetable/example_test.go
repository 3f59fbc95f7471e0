package filetable_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sluicedata/sluice/filestore"
	"github.com/sluicedata/sluice/filetable"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "filetable-example")
	defer os.RemoveAll(dir)
	for name, data := range map[string]string{
		"users.csv":                        "id,name\n1,Ada\n2,Bob\n",
		"events/day=2024-03-01/part-0.csv": "kind\nclick\n",
		"events/day=2024-03-02/part-0.csv": "kind\nview\n",
		"events/_SUCCESS":                  "",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(data), 0o644)
	}

	root, err := filetable.Open(ctx, dir, filestore.Options{})
	if err != nil {
		panic(err)
	}
	defer root.Close()
	names, _ := root.Names(ctx)
	fmt.Println(names)

	t, err := root.Table(ctx, "events")
	if err != nil {
		panic(err)
	}
	rows, err := t.Rows(ctx)
	if err != nil {
		panic(err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := rows.Values() // kind, then the partition column day
		fmt.Println(vals[0], vals[1].(time.Time).Format(time.DateOnly))
	}
	if err := rows.Err(); err != nil {
		panic(err)
	}
	for _, c := range rows.Columns() {
		fmt.Println(c.Name, c.Type)
	}

	_, err = root.Table(ctx, "user")
	fmt.Println(err != nil)
	// Output:
	// [events users]
	// click 2024-03-01
	// view 2024-03-02
	// kind STRING
	// day NAIVE_DATE
	// true
}

func ExampleUpload() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "filetable-example")
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "export.csv")
	os.WriteFile(src, []byte("User ID,Full Name\n1,Ada Lovelace\n"), 0o644)
	store := filepath.Join(dir, "store")
	os.Mkdir(store, 0o755)

	st, err := filestore.Open(ctx, store, filestore.Options{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	res, err := filetable.Upload(ctx, st, "people", src, filetable.UploadOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Keys, res.Split)
	for _, r := range res.Renamed {
		fmt.Printf("%q -> %s\n", r.From, r.To)
	}
	// Output:
	// [people.csv] false
	// "User ID" -> User_ID
	// "Full Name" -> Full_Name
}
