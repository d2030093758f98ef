package provider_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/concurry/concurry/examples/llm-batch/provider"
)

// An OpenAI client of one account gets answers until the account's quota
// of requests is spent, then a 429 that says how long to wait.
func ExampleServer() {
	s, err := provider.New(provider.Options{
		Regions: []string{"us-east-1"}, Accounts: []string{"team-a"}, Minute: time.Hour,
		Quota: provider.Quota{RequestsPerMinute: 2, InputTokensPerMinute: 10_000, OutputTokensPerMinute: 10_000, Concurrency: 4},
	})
	if err != nil {
		panic(err)
	}
	defer s.Close(context.Background())
	client := openai.NewClient(
		option.WithBaseURL(s.OpenAIBaseURL("us-east-1", "team-a")), option.WithHTTPClient(s.Client()),
		option.WithAPIKey("any"), option.WithMaxRetries(0),
	)
	params := openai.ChatCompletionNewParams{
		Model:               "gpt-sim",
		Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage("summarize this contract")},
		MaxCompletionTokens: openai.Int(64),
	}
	for range 3 {
		r, err := client.Chat.Completions.New(context.Background(), params)
		var apiErr *openai.Error
		if errors.As(err, &apiErr) {
			fmt.Println(apiErr.StatusCode, apiErr.Type, "retry-after:", apiErr.Response.Header.Get("Retry-After"))
			continue
		}
		fmt.Println("prompt tokens:", r.Usage.PromptTokens)
	}
	// Output:
	// prompt tokens: 3
	// prompt tokens: 3
	// 429 requests retry-after: 1800
}

// An Anthropic client names its account by its API key, and its region by
// its host.
func ExampleServer_anthropic() {
	s, err := provider.New(provider.Options{
		Regions: []string{"us-east-1", "eu-west-3"}, Accounts: []string{"team-a", "team-b"},
		Quota: provider.Quota{RequestsPerMinute: 50, InputTokensPerMinute: 40_000, OutputTokensPerMinute: 8_000, Concurrency: 4},
	})
	if err != nil {
		panic(err)
	}
	defer s.Close(context.Background())
	client := anthropic.NewClient(
		aoption.WithBaseURL("http://eu-west-3.provider.invalid/"), aoption.WithHTTPClient(s.Client()),
		aoption.WithAPIKey("team-b"),
	)
	m, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude-sim", MaxTokens: 256,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("classify this invoice"))},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("input tokens:", m.Usage.InputTokens)
	for _, r := range s.Report() {
		if r.Served > 0 {
			fmt.Println("served by", r.Region, r.Account)
		}
	}
	// Output:
	// input tokens: 3
	// served by eu-west-3 team-b
}
