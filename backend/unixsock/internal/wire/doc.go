// Package wire is the binary protocol between the clients and the server of
// backend/unixsock.
//
// A connection carries frames in both directions. Every frame is
//
//	length  uint32, big-endian: the bytes that follow, at most the peer's limit
//	op      uint8: the message type
//	id      uint64, big-endian: the request id, echoed by the reply
//	payload the message's fields: uvarints, zig-zag varints, strings as a
//	        uvarint length and bytes, lists as a uvarint count and elements
//
// A client opens with a Hello carrying [Magic] and [Version]; the server
// answers HelloOK, which states its caps per connection (sets open, waiting
// acquisitions) so that the client refuses a request past them before
// sending it, or an Error with [CodeVersion] and closes. Requests carry
// ids chosen by the client, so one connection carries many requests at once
// and replies may come back in any order. A waiting Acquire that the server
// cannot grant at once gets a Queued frame (naming the limit that blocks it)
// before its reply; one granted at once gets only its Granted. A refusal
// that carries facts (the key that refused, how long until the request would
// fit) comes as a Refused reply. A Cancel frame names, by its id, a
// waiting Acquire to abandon; the Acquire still gets exactly one reply. A
// Settle with FlagQuiet gets a reply only when it fails: frames of one
// connection are handled in order, so a request sent after it on the same
// connection sees its effect; a client may give such a Settle the id of its
// set with the high bit set, so that a failure names the set. Pause and
// Lower carry the upstream's feedback to a set, for every process sharing
// it. The Acquires of one pool-wide wait (on sets of one server, over any of
// its connections) carry the same Claim token, and the server grants at most
// one of them.
//
// A request the server refuses (a definition outside the contract, a cap
// reached, a set closed) gets an Error reply and the connection lives on;
// only a frame that breaks the protocol closes it.
//
// Decoding never panics and never trusts a count: every field is checked
// against the bytes left and the limits below, and trailing bytes are an
// error.
package wire
