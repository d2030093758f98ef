package batch

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry/examples/llm-batch/provider"
)

// The table sizes its columns to what they hold — a region name longer than
// the defaults' does not shift the others — and labels the connections
// column as the peak it is, over the cap.
func TestWriteTextTable(t *testing.T) {
	s := Summary{
		Quota:  Quota{RequestsPerMinute: 10, InputTokensPerMinute: 1_000, OutputTokensPerMinute: 100, Concurrency: 8},
		Minute: time.Second, Wall: time.Second, WallSeconds: 1, MinuteSeconds: 1, Prompts: 30, Completed: 30,
	}
	r := &run{rateLimited: make([]atomic.Int64, 2)}
	r.rateLimited[1].Store(2)
	s.endpoints([]provider.AccountReport{
		{Region: "ap-southeast-2", Account: "123456789012", Served: 12, InputTokens: 1_200, OutputTokens: 150, MaxInFlight: 8},
		{Region: "eu-west-3", Account: "234567890123", Served: 18, InputTokens: 950, OutputTokens: 190, MaxInFlight: 5},
	}, r)
	s.Endpoints[0].WaitSeconds = map[string]float64{KeyOutputTokens: 3, "call_count": 1}
	s.Endpoints[0].Bottleneck = KeyOutputTokens
	var b bytes.Buffer
	require.NoError(t, s.WriteText(&b))
	table := strings.SplitAfterN(b.String(), "\n\n", 2)[0]
	assert.Equal(t, `                                                                      quota used
region          account       requests  input tok  output tok  429s  req   in  out  peak conns  bottleneck
──────────────────────────────────────────────────────────────────────────────────────────────────────────
ap-southeast-2  123456789012        12      1,200         150     0  60%  60%  75%         8/8  output 75%
eu-west-3       234567890123        18        950         190     2  90%  48%  95%         5/8
──────────────────────────────────────────────────────────────────────────────────────────────────────────
total                               30      2,150         340     2  75%  54%  85%

`, table)
}
