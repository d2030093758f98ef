package wire

import (
	"fmt"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// Version is the protocol version this package speaks. A peer of another
// version is refused with CodeVersion.
const Version = 2

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
	OpAcquire  Op = 0x03 // SetID, Flags (FlagWait), Deadline, Claim, Values (amounts)
	OpCancel   Op = 0x04 // no payload; ID names the Acquire to abandon
	OpSettle   Op = 0x05 // Lease, Flags (FlagFinal), Values (deltas)
	OpStats    Op = 0x06 // SetID
	OpCloseSet Op = 0x07 // SetID
	OpCharge   Op = 0x08 // SetID, Values (usage to charge, ≥ 0); answered with Settled

	OpHelloOK   Op = 0x81 // Version, PID, Instance, ConnSets, ConnWaits
	OpOpened    Op = 0x82 // SetID
	OpGranted   Op = 0x83 // Lease
	OpSettled   Op = 0x84 // Values (refunded)
	OpStatsOK   Op = 0x85 // Stats
	OpSetClosed Op = 0x86 // no payload
	OpError     Op = 0x8F // Code, Text
)

// Flags of Acquire and Settle.
const (
	FlagWait  uint8 = 1 // Acquire: wait until granted
	FlagFinal uint8 = 1 // Settle: end the lease
	FlagQuiet uint8 = 2 // Settle: send no reply unless it fails
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
	OpStats: "Stats", OpCloseSet: "CloseSet", OpCharge: "Charge", OpHelloOK: "HelloOK", OpOpened: "Opened",
	OpGranted: "Granted", OpSettled: "Settled", OpStatsOK: "StatsOK", OpSetClosed: "SetClosed", OpError: "Error",
}

// Msg is one decoded frame. Only the fields of its Op are meaningful. Decode
// reuses the slices of the Msg it decodes into. A Msg is not safe for
// concurrent use.
type Msg struct {
	Op        Op
	ID        uint64
	Version   uint64              // Hello, HelloOK
	PID       uint64              // HelloOK: the server's process id
	Instance  uint64              // HelloOK: random, new for every server started
	ConnSets  uint64              // HelloOK: the sets one connection may have open
	ConnWaits uint64              // HelloOK: the acquisitions one connection may have waiting
	Name      string              // Open
	Specs     []backend.Spec      // Open
	SetID     uint64              // Acquire, Stats, CloseSet, Charge; Opened
	Flags     uint8               // Acquire, Settle
	Deadline  int64               // Acquire: Unix ns, 0 for none
	Claim     uint64              // Acquire: a token shared by the requests of one pool-wide wait, 0 for none
	Lease     uint64              // Settle; Granted
	Values    []int64             // Acquire: amounts; Settle: deltas; Charge: usage; Settled: refunds
	Stats     []backend.SpecStats // StatsOK
	Code      Code                // Error
	Text      string              // Error
}

// Append encodes m as one frame at the end of b and returns the result.
func (m *Msg) Append(b []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(m.Op))
	b = appendU64(b, m.ID)
	switch m.Op {
	case OpHello:
		b = append(b, Magic...)
		b = appendUvarint(b, m.Version)
	case OpHelloOK:
		b = appendUvarint(appendUvarint(b, m.Version), m.PID)
		b = appendUvarint(appendUvarint(appendU64(b, m.Instance), m.ConnSets), m.ConnWaits)
	case OpOpen:
		b = appendSpecs(appendString(b, m.Name), m.Specs)
	case OpAcquire:
		b = appendUvarint(b, m.SetID)
		b = append(b, m.Flags)
		b = appendVarint(b, m.Deadline)
		b = appendUvarint(b, m.Claim)
		b = appendValues(b, m.Values)
	case OpSettle:
		b = appendUvarint(b, m.Lease)
		b = append(b, m.Flags)
		b = appendValues(b, m.Values)
	case OpStats, OpCloseSet, OpOpened:
		b = appendUvarint(b, m.SetID)
	case OpCharge:
		b = appendValues(appendUvarint(b, m.SetID), m.Values)
	case OpGranted:
		b = appendUvarint(b, m.Lease)
	case OpSettled:
		b = appendValues(b, m.Values)
	case OpStatsOK:
		b = appendUvarint(b, uint64(len(m.Stats)))
		for _, s := range m.Stats {
			b = appendVarint(appendVarint(b, s.Available), s.InUse)
		}
	case OpError:
		b = appendString(append(b, byte(m.Code)), m.Text)
	}
	n := len(b) - start - 4
	b[start], b[start+1], b[start+2], b[start+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
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
	switch m.Op {
	case OpHello:
		if d.bytes(len(Magic)) != Magic {
			return malformed("hello without the protocol magic")
		}
		m.Version = d.uvarint()
	case OpHelloOK:
		m.Version, m.PID = d.uvarint(), d.uvarint()
		if m.Version != Version && len(d.b) == 0 {
			break // an older server: let the caller report the version
		}
		m.Instance, m.ConnSets, m.ConnWaits = d.u64(), d.uvarint(), d.uvarint()
	case OpOpen:
		m.decodeOpen(&d)
	case OpAcquire:
		m.SetID, m.Flags, m.Deadline, m.Claim = d.uvarint(), d.byte(), d.varint(), d.uvarint()
		m.Values = d.values(m.Values[:0])
		d.check(m.Flags&^FlagWait == 0, "unknown acquire flags %#x", m.Flags)
	case OpSettle:
		m.Lease, m.Flags = d.uvarint(), d.byte()
		m.Values = d.values(m.Values[:0])
		d.check(m.Flags&^(FlagFinal|FlagQuiet) == 0, "unknown settle flags %#x", m.Flags)
	case OpCancel, OpSetClosed:
	case OpStats, OpCloseSet, OpOpened:
		m.SetID = d.uvarint()
	case OpCharge:
		m.SetID = d.uvarint()
		m.Values = d.values(m.Values[:0])
	case OpGranted:
		m.Lease = d.uvarint()
	case OpSettled:
		m.Values = d.values(m.Values[:0])
	case OpStatsOK:
		m.decodeStats(&d)
	case OpError:
		m.Code, m.Text = Code(d.byte()), d.str(MaxText)
	default:
		return malformed("unknown op %#x", uint8(m.Op))
	}
	return d.finish(m.Op)
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
	n := d.count(MaxValues, 2)
	m.Stats = m.Stats[:0]
	for range n {
		m.Stats = append(m.Stats, backend.SpecStats{Available: d.varint(), InUse: d.varint()})
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
