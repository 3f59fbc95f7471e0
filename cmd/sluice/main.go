// Command sluice creates, runs and inspects connectors locally, and runs
// the server they are deployed to.
package main

import (
	"os"

	"github.com/sluicedata/sluice/internal/cli"
	"github.com/sluicedata/sluice/internal/servecmd"
)

func main() {
	// serve and deploy are the sluice program's alone: a connector
	// program (which links internal/cli) has no use for the server.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "serve":
			os.Exit(servecmd.Serve(os.Args[2:], os.Stdout, os.Stderr))
		case "deploy":
			os.Exit(servecmd.Deploy(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(cli.Main(os.Args[1:]))
}
