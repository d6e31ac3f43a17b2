// Command gridctl is the admin command line of Gridkeeper.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "gridctl: see 'gridctl help'")
	os.Exit(2)
}
