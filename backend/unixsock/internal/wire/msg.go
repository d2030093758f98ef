package wire

import (
	"fmt"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// Version is the protocol version this package speaks. A peer of another
// version is refused with CodeVersion. Version 3 added Queued, Refused,
// Pause, Lower and Applied, and the debt in StatsOK; version 4 FlagCheck.
const Version = 4

// Magic opens every Hello payload, so that a stray connection is recognised
// at once.
const Magic = "CCRY"

// Limits every decoder enforces. Names, keys and definitions are bounded only
// by the frame: checking them against the contract (backend.CheckName,
// backend.CheckSpecs) is the server's job, so that a request outside it is
// refused alone rather than closing the connection.
const (
	HeaderSize   = 13               // length, op and id
	MaxValues    = backend.MaxSpecs // amounts, deltas or stats in one frame: one per limit of a set
	MaxText      = 4096             // bytes in an error message
	DefaultLimit = 1 << 16          // default maximum frame length
	// MinLimit is the longest valid request: an Open of a name of
	// backend.MaxNameLen bytes and backend.MaxSpecs limits with keys of
	// backend.MaxKeyLen bytes, rounded up. A server accepts frames at least
	// this long.
	MinLimit = 20 << 10
)

// Op is a message type. Requests have the high bit clear, replies set.
type Op uint8

// Requests (client to server) and replies (server to client).
const (
	OpHello    Op = 0x01 // Version; first frame of a connection
	OpOpen     Op = 0x02 // Name, Specs
	OpAcquire  Op = 0x03 // SetID, Flags (FlagWait, FlagCheck), Deadline, Claim, Values (amounts)
	OpCancel   Op = 0x04 // no payload; ID names the Acquire to abandon
	OpSettle   Op = 0x05 // Lease, Flags (FlagFinal), Values (deltas)
	OpStats    Op = 0x06 // SetID
	OpCloseSet Op = 0x07 // SetID
	OpCharge   Op = 0x08 // SetID, Values (usage to charge, ≥ 0); answered with Settled
	OpPause    Op = 0x09 // SetID, Spec (-1: every spec), Until; answered with Applied
	OpLower    Op = 0x0A // SetID, Spec, Remaining, AsOf; answered with Applied

	OpHelloOK   Op = 0x81 // Version, PID, Instance, ConnSets, ConnWaits
	OpOpened    Op = 0x82 // SetID
	OpGranted   Op = 0x83 // Lease
	OpSettled   Op = 0x84 // Values (refunded)
	OpStatsOK   Op = 0x85 // Stats
	OpSetClosed Op = 0x86 // no payload
	OpQueued    Op = 0x87 // Spec (the blocker, -1: unknown): a waiting Acquire queued; its reply follows
	OpRefused   Op = 0x88 // Flags (RefusedDeadline, RefusedQueued), Spec (the blocker), RetryAfter, Key
	OpApplied   Op = 0x89 // no payload: a Pause or Lower was applied
	OpError     Op = 0x8F // Code, Text
)

// Flags of Acquire and Settle.
const (
	FlagWait  uint8 = 1 // Acquire: wait until granted
	FlagCheck uint8 = 2 // Acquire: take nothing; answer CodeClaimed when the request would be granted (see backend.NewCheckClaim)
	FlagFinal uint8 = 1 // Settle: end the lease
	FlagQuiet uint8 = 2 // Settle: send no reply unless it fails

	RefusedDeadline uint8 = 1 // Refused: a wait whose deadline cannot be met (else a non-waiting Acquire)
	RefusedQueued   uint8 = 2 // Refused: the request would fit, but earlier requests wait
)

// String returns the op's name, such as "Acquire".
func (op Op) String() string {
	if s, ok := opNames[op]; ok {
		return s
	}
	return fmt.Sprintf("Op(%#x)", uint8(op))
}

var opNames = map[Op]string{
	OpHello: "Hello", OpOpen: "Open", OpAcquire: "Acquire", OpCancel: "Cancel", OpSettle: "Settle",
	OpStats: "Stats", OpCloseSet: "CloseSet", OpCharge: "Charge", OpPause: "Pause", OpLower: "Lower",
	OpHelloOK: "HelloOK", OpOpened: "Opened", OpGranted: "Granted", OpSettled: "Settled", OpStatsOK: "StatsOK",
	OpSetClosed: "SetClosed", OpQueued: "Queued", OpRefused: "Refused", OpApplied: "Applied", OpError: "Error",
}

// Msg is one decoded frame. Only the fields of its Op are meaningful. Decode
// reuses the slices of the Msg it decodes into. A Msg is not safe for
// concurrent use.
type Msg struct {
	Op         Op
	ID         uint64
	Version    uint64              // Hello, HelloOK
	PID        uint64              // HelloOK: the server's process id
	Instance   uint64              // HelloOK: random, new for every server started
	ConnSets   uint64              // HelloOK: the sets one connection may have open
	ConnWaits  uint64              // HelloOK: the acquisitions one connection may have waiting
	Name       string              // Open
	Specs      []backend.Spec      // Open
	SetID      uint64              // Acquire, Stats, CloseSet, Charge, Pause, Lower; Opened
	Flags      uint8               // Acquire, Settle, Refused
	Deadline   int64               // Acquire: Unix ns, 0 for none
	Claim      uint64              // Acquire: a token shared by the requests of one pool-wide wait, 0 for none
	Lease      uint64              // Settle; Granted
	Values     []int64             // Acquire: amounts; Settle: deltas; Charge: usage; Settled: refunds
	Stats      []backend.SpecStats // StatsOK
	Spec       int64               // Pause (-1: every spec), Lower; Queued, Refused (-1: unknown)
	Until      int64               // Pause: Unix ns
	Remaining  int64               // Lower: units left (below 0: debt)
	AsOf       int64               // Lower: Unix ns the upstream's report was true at
	RetryAfter int64               // Refused: ns, ≥ 0
	Key        string              // Refused: the key that refused, "" when unknown
	Code       Code                // Error
	Text       string              // Error
}

// Append encodes m as one frame at the end of b and returns the result.
func (m *Msg) Append(b []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(m.Op))
	b = appendU64(b, m.ID)
	if m.Op&0x80 == 0 {
		b = m.appendRequest(b)
	} else {
		b = m.appendReply(b)
	}
	n := len(b) - start - 4
	b[start], b[start+1], b[start+2], b[start+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}

// appendRequest appends the payload of a request.
func (m *Msg) appendRequest(b []byte) []byte {
	switch m.Op {
	case OpHello:
		b = appendUvarint(append(b, Magic...), m.Version)
	case OpOpen:
		b = appendSpecs(appendString(b, m.Name), m.Specs)
	case OpAcquire:
		b = appendVarint(append(appendUvarint(b, m.SetID), m.Flags), m.Deadline)
		b = appendValues(appendUvarint(b, m.Claim), m.Values)
	case OpSettle:
		b = appendValues(append(appendUvarint(b, m.Lease), m.Flags), m.Values)
	case OpStats, OpCloseSet:
		b = appendUvarint(b, m.SetID)
	case OpCharge:
		b = appendValues(appendUvarint(b, m.SetID), m.Values)
	case OpPause:
		b = appendVarint(appendVarint(appendUvarint(b, m.SetID), m.Spec), m.Until)
	case OpLower:
		b = appendVarint(appendVarint(appendUvarint(b, m.SetID), m.Spec), m.Remaining)
		b = appendVarint(b, m.AsOf)
	}
	return b
}

// appendReply appends the payload of a reply.
func (m *Msg) appendReply(b []byte) []byte {
	switch m.Op {
	case OpHelloOK:
		b = appendUvarint(appendUvarint(b, m.Version), m.PID)
		b = appendUvarint(appendUvarint(appendU64(b, m.Instance), m.ConnSets), m.ConnWaits)
	case OpOpened:
		b = appendUvarint(b, m.SetID)
	case OpGranted:
		b = appendUvarint(b, m.Lease)
	case OpQueued:
		b = appendVarint(b, m.Spec)
	case OpRefused:
		b = appendVarint(append(b, m.Flags), m.Spec)
		b = appendString(appendVarint(b, m.RetryAfter), m.Key)
	case OpSettled:
		b = appendValues(b, m.Values)
	case OpStatsOK:
		b = appendUvarint(b, uint64(len(m.Stats)))
		for _, s := range m.Stats {
			b = appendVarint(appendVarint(appendVarint(b, s.Available), s.InUse), s.Debt)
		}
	case OpError:
		text := m.Text
		if len(text) > MaxText {
			text = text[:MaxText] // what a decoder accepts: a long message is cut, not refused
		}
		b = appendString(append(b, byte(m.Code)), text)
	}
	return b
}

// Decode parses one frame body (the bytes after the length: op, id, payload)
// into m. It fails with an error wrapping ErrMalformed for an unknown op, a
// field out of range, a short payload, or trailing bytes.
func (m *Msg) Decode(body []byte) error {
	if len(body) < HeaderSize-4 {
		return malformed("frame of %d bytes is shorter than its header", len(body))
	}
	d := decoder{b: body[9:]}
	m.Op, m.ID = Op(body[0]), getU64(body[1:9])
	known := false
	if m.Op&0x80 == 0 {
		known = m.decodeRequest(&d)
	} else {
		known = m.decodeReply(&d)
	}
	if !known {
		return malformed("unknown op %#x", uint8(m.Op))
	}
	return d.finish(m.Op)
}

// decodeRequest reads the payload of a request; it reports false for an
// unknown op.
func (m *Msg) decodeRequest(d *decoder) bool {
	switch m.Op {
	case OpHello:
		d.check(d.bytes(len(Magic)) == Magic, "hello without the protocol magic")
		m.Version = d.uvarint()
	case OpOpen:
		m.decodeOpen(d)
	case OpAcquire:
		m.SetID, m.Flags, m.Deadline, m.Claim = d.uvarint(), d.byte(), d.varint(), d.uvarint()
		m.Values = d.values(m.Values[:0])
		d.check(m.Flags&^(FlagWait|FlagCheck) == 0, "unknown acquire flags %#x", m.Flags)
	case OpSettle:
		m.Lease, m.Flags = d.uvarint(), d.byte()
		m.Values = d.values(m.Values[:0])
		d.check(m.Flags&^(FlagFinal|FlagQuiet) == 0, "unknown settle flags %#x", m.Flags)
	case OpCancel:
	case OpStats, OpCloseSet:
		m.SetID = d.uvarint()
	case OpCharge:
		m.SetID = d.uvarint()
		m.Values = d.values(m.Values[:0])
	case OpPause:
		m.SetID, m.Spec, m.Until = d.uvarint(), d.varint(), d.varint()
		d.check(m.Spec >= -1 && m.Spec < MaxValues, "pause of spec %d", m.Spec)
	case OpLower:
		m.SetID, m.Spec, m.Remaining, m.AsOf = d.uvarint(), d.varint(), d.varint(), d.varint()
		d.check(m.Spec >= 0 && m.Spec < MaxValues, "lower of spec %d", m.Spec)
	default:
		return false
	}
	return true
}

// decodeReply reads the payload of a reply; it reports false for an
// unknown op.
func (m *Msg) decodeReply(d *decoder) bool {
	switch m.Op {
	case OpHelloOK:
		m.Version, m.PID = d.uvarint(), d.uvarint()
		if m.Version != Version && len(d.b) == 0 {
			return true // an older server: let the caller report the version
		}
		m.Instance, m.ConnSets, m.ConnWaits = d.u64(), d.uvarint(), d.uvarint()
	case OpOpened:
		m.SetID = d.uvarint()
	case OpGranted:
		m.Lease = d.uvarint()
	case OpQueued:
		m.Spec = d.varint()
		d.check(m.Spec >= -1 && m.Spec < MaxValues, "queued on spec %d", m.Spec)
	case OpRefused:
		m.Flags, m.Spec, m.RetryAfter, m.Key = d.byte(), d.varint(), d.varint(), d.str(MaxText)
		d.check(m.Flags&^(RefusedDeadline|RefusedQueued) == 0, "unknown refusal flags %#x", m.Flags)
		d.check(m.Spec >= -1 && m.Spec < MaxValues, "refused by spec %d", m.Spec)
		d.check(m.RetryAfter >= 0, "retry after %d", m.RetryAfter)
	case OpSettled:
		m.Values = d.values(m.Values[:0])
	case OpStatsOK:
		m.decodeStats(d)
	case OpSetClosed, OpApplied:
	case OpError:
		m.Code, m.Text = Code(d.byte()), d.str(MaxText)
	default:
		return false
	}
	return true
}

// decodeOpen reads a set definition. Only its shape is checked: whether it
// is a valid definition is for the server to answer.
func (m *Msg) decodeOpen(d *decoder) {
	m.Name = d.str(len(d.b))
	n := d.count(len(d.b), 4)
	m.Specs = m.Specs[:0]
	for range n {
		s := backend.Spec{Key: d.str(len(d.b)), Kind: backend.Kind(d.byte())}
		s.Algorithm, s.Window, s.Capacity = algorithms.Kind(d.byte()), time.Duration(d.varint()), d.varint()
		if d.err != nil {
			return
		}
		m.Specs = append(m.Specs, s)
	}
}

func (m *Msg) decodeStats(d *decoder) {
	n := d.count(MaxValues, 3)
	m.Stats = m.Stats[:0]
	for range n {
		m.Stats = append(m.Stats, backend.SpecStats{Available: d.varint(), InUse: d.varint(), Debt: d.varint()})
	}
}

func appendSpecs(b []byte, specs []backend.Spec) []byte {
	b = appendUvarint(b, uint64(len(specs)))
	for _, s := range specs {
		b = appendString(b, s.Key)
		b = append(b, byte(s.Kind), byte(s.Algorithm))
		b = appendVarint(appendVarint(b, int64(s.Window)), s.Capacity)
	}
	return b
}

func appendValues(b []byte, v []int64) []byte {
	b = appendUvarint(b, uint64(len(v)))
	for _, x := range v {
		b = appendVarint(b, x)
	}
	return b
}
