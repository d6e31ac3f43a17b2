package node_test

import (
	"os"
	"testing"

	"github.com/gridkeeper/gridkeeper/pkg/testrig"
)

func TestMain(m *testing.M) { os.Exit(testrig.Main(m)) }
