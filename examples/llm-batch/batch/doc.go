// Package batch is the core of the llm-batch example: a batch of prompts
// sent to a simulated LLM provider with several regions and accounts, each
// with Bedrock-style quotas — requests, input tokens and output tokens per
// minute, and a cap on concurrent connections.
//
// The provider (package provider) is a real HTTP server on 127.0.0.1 that
// enforces its quotas with its own accounting, independent of concurry, and
// answers 429 with Retry-After when a call would exceed one; with
// [Config].InMemory it runs in the process alone, and a run inside a
// testing/synctest bubble is exact. [Run] sends the batch through a
// worker pool whose workers call the provider with the OpenAI SDK
// (github.com/openai/openai-go) over an httplimit.Transport: for each call
// it acquires the request, its input tokens (counted exactly) and
// max_tokens of output from a concurry.LimitPool over one
// concurry.LimitSet per (region, account), sends it to the endpoint of the
// set that granted them, settles the real usage the answer reports — so
// that the unused output is refunded — and takes the provider's rate-limit
// headers and 429s as feedback, which keeps the 429s few when a foreign
// client ([Config].ForeignShare) spends part of the quotas unseen. With
// [Config].Naive the same batch runs with no limiter, and the provider's
// 429s show why one is needed.
//
// [Summary] holds what happened, per (region, account), with the provider's
// own accounting beside the client's, the limit each set's requests waited
// on longest, and the run's throughput as a fraction of the most the quotas
// allowed.
package batch
