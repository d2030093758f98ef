package provider

import (
	"encoding/json"
	"errors"
	"net/http"
)

// obj is a JSON object of a response.
type obj = map[string]any

// openAI is what the OpenAI-compatible APIs share: their rate-limit
// headers and error bodies.
type openAI struct{}

func (openAI) writeLimits(h http.Header, s snapshot) { writeOpenAILimits(h, s) }

func (openAI) writeRequestID(h http.Header, id string) { h.Set("X-Request-Id", "req_"+id) }

// writeError writes OpenAI's error body: {"error": {"message", "type",
// "param", "code"}}. A 429 has type "requests" or "tokens" (the kind of
// quota that refused) and code "rate_limit_exceeded"; other errors are of
// type "invalid_request_error", with code "invalid_api_key" for a 401,
// but a 500, of type "server_error".
func (openAI) writeError(w http.ResponseWriter, e apiError) {
	typ, code := "invalid_request_error", any(nil)
	switch e.kind {
	case errInternal:
		typ = "server_error"
	case errAuthentication:
		code = "invalid_api_key"
	case errRateLimit, errRequestTooLarge:
		typ, code = "tokens", "rate_limit_exceeded"
		if e.quota == "requests" || e.quota == DimConcurrency {
			typ = "requests"
		}
	}
	writeJSON(w, e.kind.status(), obj{"error": obj{"message": e.message, "type": typ, "param": nil, "code": code}})
}

// parseOpenAI decodes body into v, which must name a model.
func parseOpenAI(body []byte, v any, model *string) error {
	if err := json.Unmarshal(body, v); err != nil {
		return errors.New("We could not parse the JSON body of your request: " + err.Error())
	}
	if *model == "" {
		return errors.New("you must provide a model parameter")
	}
	return nil
}

// flatten returns the texts of every item.
func flatten(items []texts) texts {
	var all texts
	for _, t := range items {
		all = append(all, t...)
	}
	return all
}
