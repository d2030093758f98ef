package batch

import (
	"errors"
	"fmt"

	"github.com/concurry/concurry/examples/llm-batch/provider"
)

// Quota is what the simulated provider allows one (region, account) per
// minute, and how many calls it serves at once: see provider.Quota.
type Quota = provider.Quota

// CountTokens is the provider's tokenizer: one token per
// whitespace-separated word. The batch's prompts are counted with it, so
// the client knows their input exactly.
func CountTokens(s string) int64 { return provider.CountTokens(s) }

// startProvider starts the simulated provider of a run: on a loopback
// socket, or with cfg.InMemory in the process alone, reached through its
// in-memory transport.
func startProvider(cfg Config) (*provider.Server, error) {
	o := provider.Options{
		Regions: cfg.Regions, Accounts: cfg.Accounts, Quota: cfg.Quota, Minute: cfg.Minute,
		MinLatency: cfg.MinLatency, MaxLatency: cfg.MaxLatency, MaxOutputTokens: max(cfg.MaxTokens, 8192), Seed: cfg.Seed,
		ForeignShare: cfg.ForeignShare,
	}
	start := provider.Start
	if cfg.InMemory {
		start = provider.New
	}
	p, err := start(o)
	if errors.Is(err, provider.ErrInvalidOptions) {
		err = fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return p, err
}
