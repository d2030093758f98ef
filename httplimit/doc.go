// Package httplimit connects concurry's limits to net/http.
//
// [Handler] (and [Middleware], its func(http.Handler) http.Handler form for
// routers such as chi) limits a server's clients: it finds the identity of
// each request (an API key header, the client IP behind trusted proxies, a
// user from the request's context), acquires the request's cost from that
// identity's LimitSet of a [concurry.Keyed] (or from one shared
// [concurry.Limiter]), holds it while the handler runs — so a ResourceLimit
// caps concurrent requests — and releases it when the handler returns. A
// request that cannot be admitted gets 429 Too Many Requests with
// Retry-After, taken from the refusal's [concurry.RefusalError], and the
// RateLimit-Policy and RateLimit header fields of the IETF draft
// draft-ietf-httpapi-ratelimit-headers (the legacy X-RateLimit-* fields on
// request). RateLimit-Policy lists the rate and call limits, and RateLimit
// names the one that refused; a refusal only a release can end — by a
// ResourceLimit (concurrent requests, no policy of the draft's), or a Wait
// that ran out in the queue — says Retry-After: 1 and names no policy. A
// handler whose request's cost names amounts can report their real usage
// through [FromContext].
//
// The package uses only the standard library.
package httplimit
