// Package provider is a simulated LLM provider for examples and tests: an
// HTTP server with OpenAI- and Anthropic-compatible APIs, several regions
// and accounts, each with its own per-minute quotas enforced by its own
// accounting — deliberately independent of concurry — and the rate-limit
// headers and 429s of the real providers, so that their SDKs
// (github.com/openai/openai-go/v3, github.com/anthropics/anthropic-sdk-go/v2)
// and any client written against the real APIs can talk to it.
//
// # APIs
//
// Every API is POST, JSON in and out, streamed as server-sent events when
// the request says "stream": true:
//
//   - OpenAI chat completions, /v1/chat/completions: max_completion_tokens
//     or max_tokens; usage prompt_tokens, completion_tokens, total_tokens;
//     a stream of "data: {chunk}" lines, the usage in a last chunk when
//     stream_options.include_usage is set, then "data: [DONE]".
//   - OpenAI responses, /v1/responses: max_output_tokens; usage
//     input_tokens, output_tokens; a stream of response.* events ending in
//     response.completed (response.incomplete when the output reached its
//     maximum) with the usage.
//   - Anthropic messages, /v1/messages: max_tokens (required); usage
//     input_tokens, output_tokens; a stream of message_start (input usage),
//     content_block_delta…, message_delta (output usage), message_stop.
//   - A plain endpoint, /{region}/{account}/invoke ([InvokeRequest],
//     [InvokeResponse]), for clients written by hand.
//
// Every request's prompt is counted by Options.CountTokens (default
// [CountTokens], a token per word) over every text it carries (messages,
// system prompt, instructions, input). The answer has a random number of
// output tokens, from 1 to the request's maximum, drawn from Options.Seed
// and the request's bytes, and takes a random latency from
// [Options.MinLatency, Options.MaxLatency], over which a stream spreads its
// chunks.
//
// # Routing
//
// Each (region, account) is an account of its own. A request names its
// region by the first segment of its path, /{region}/…, or else by the
// first label of its host, {region}.example.test (the only region is
// implied when there is one), and its account by the second segment,
// /{region}/{account}/…, or else by its API key — Authorization: Bearer
// <key> (OpenAI) or x-api-key: <key> (Anthropic) — which is the account's
// name. So an OpenAI client of account A in region R takes
// [Server.OpenAIBaseURL](R, A) as its base URL (any key), or
// http://R.host/v1/ with key A; an Anthropic client takes
// [Server.AnthropicBaseURL](R, A). A path that names no API is a 404; an
// unknown region or path account is a 404; a missing or unknown key is a
// 401 — each in the API's error shape.
//
// # Quotas
//
// Each account enforces a [Quota]: token buckets of requests, input tokens
// and output tokens per minute (and optionally tokens of both), full at
// the start and refilling continuously, and a cap on calls at once. A call
// takes 1 request, its input tokens and its maximum output at admission,
// all or nothing, and gets its unused output back when it ends: when its
// output is complete, before the last of its answer is written (the whole
// body, or a stream's final events), so that a client that has read the
// answer finds the call ended — its output settled and its place under the
// cap free — whatever the scheduling of the server's goroutines. A call
// that does not fit is answered 429 with the provider's error body
// (OpenAI: {"error":{"type":"requests"|"tokens","code":
// "rate_limit_exceeded",…}}; Anthropic: {"type":"error","error":
// {"type":"rate_limit_error",…}}), retry-after (whole seconds, rounded up)
// and retry-after-ms: how long until it would fit if nothing else
// changed. A call larger than a whole quota is a 429 with x-should-retry:
// false. Every response of an account carries its rate-limit headers, as
// they are after the call's admission:
//
//   - OpenAI APIs: x-ratelimit-{limit,remaining,reset}-{requests,tokens},
//     resets as Go durations ("6m0s", "1s", "20ms").
//   - Anthropic: anthropic-ratelimit-{requests,tokens,input-tokens,
//     output-tokens}-{limit,remaining,reset}, resets as RFC 3339 instants.
//
// [Server.Report] returns each account's own accounting: calls served,
// 429s sent, by quota, tokens used, the most calls at once.
//
// # Foreign client
//
// With Options.ForeignShare, a foreign client — another program on the
// same accounts, unseen by the client under test — spends that share of
// every quota on a fixed schedule, so a client that keeps to the quotas by
// its own count alone gets 429s it cannot prevent; one that heeds the
// rate-limit headers can.
//
// # Time
//
// The provider reads the time with time.Now and waits with timers, so
// inside a testing/synctest bubble — a Server made there, reached through
// [Server.Transport], with no socket — its clock is the bubble's fake one:
// quotas, Retry-After values and latencies are exact and a test needs no
// sleep.
package provider
