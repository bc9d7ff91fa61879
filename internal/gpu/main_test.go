package gpu_test

import (
	"testing"

	"github.com/open-autoglm/glmd/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
