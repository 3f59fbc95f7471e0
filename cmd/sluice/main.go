// Command sluice creates, runs and inspects connectors locally.
package main

import (
	"os"

	"github.com/sluicedata/sluice/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
