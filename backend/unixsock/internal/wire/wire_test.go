package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// samples returns one valid message of every op.
func samples() []Msg {
	specs := []backend.Spec{
		{Key: "call_count", Kind: backend.Rate, Algorithm: algorithms.GCRA, Window: time.Minute, Capacity: 500},
		{Key: "tokens", Kind: backend.Rate, Window: time.Hour, Capacity: 1 << 40},
		{Key: "conns", Kind: backend.Resource, Capacity: 8},
	}
	return []Msg{
		{Op: OpHello, ID: 1, Version: Version},
		{Op: OpHelloOK, ID: 1, Version: Version, PID: 4242, Instance: 1 << 63, ConnSets: 4096, ConnWaits: 1 << 14},
		{Op: OpOpen, ID: 2, Name: "bedrock/us-east-1", Specs: specs},
		{Op: OpOpened, ID: 2, SetID: 7},
		{Op: OpAcquire, ID: 3, SetID: 7, Flags: FlagWait, Deadline: time.Now().UnixNano(), Claim: 1<<64 - 1, Values: []int64{1, 900, 0}},
		{Op: OpAcquire, ID: 4, SetID: 7, Flags: FlagWait | FlagCheck, Values: []int64{1}},
		{Op: OpGranted, ID: 3, Lease: 1<<40 + 5},
		{Op: OpCancel, ID: 3},
		{Op: OpSettle, ID: 4, Lease: 5, Flags: FlagFinal, Values: []int64{0, -300, 0}},
		{Op: OpSettled, ID: 4, Values: []int64{0, 300, 0}},
		{Op: OpStats, ID: 5, SetID: 7},
		{Op: OpStatsOK, ID: 5, Stats: []backend.SpecStats{{Available: 499}, {Available: 0, Debt: 1 << 40}, {Available: 7, InUse: 1}}},
		{Op: OpCloseSet, ID: 6, SetID: 7},
		{Op: OpCharge, ID: 7, SetID: 7, Values: []int64{0, 1 << 50, 0}},
		{Op: OpSetClosed, ID: 6},
		{Op: OpPause, ID: 8, SetID: 7, Spec: -1, Until: time.Now().UnixNano()},
		{Op: OpLower, ID: 9, SetID: 7, Spec: 1, Remaining: 1 << 50, AsOf: time.Now().UnixNano()},
		{Op: OpApplied, ID: 9},
		{Op: OpQueued, ID: 3, Spec: 2},
		{Op: OpRefused, ID: 3, Flags: RefusedDeadline | RefusedQueued, Spec: -1, RetryAfter: int64(time.Hour), Key: "tokens"},
		{Op: OpError, ID: 6, Code: CodeLimitMismatch, Text: "concurry: limit definitions differ"},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range samples() {
		t.Run(m.Op.String(), func(t *testing.T) {
			frame := m.Append([]byte("prefix"))[len("prefix"):]
			body, err := NewReader(bytes.NewReader(frame), 0).Next()
			if err != nil {
				t.Fatal(err)
			}
			var got Msg
			if err := got.Decode(body); err != nil {
				t.Fatal(err)
			}
			if !equalMsg(m, got) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
			}
		})
	}
}

// equalMsg compares messages, treating nil and empty slices alike.
func equalMsg(a, b Msg) bool {
	norm := func(m *Msg) {
		if len(m.Values) == 0 {
			m.Values = nil
		}
		if len(m.Specs) == 0 {
			m.Specs = nil
		}
		if len(m.Stats) == 0 {
			m.Stats = nil
		}
	}
	norm(&a)
	norm(&b)
	return reflect.DeepEqual(a, b)
}

func TestDecodeRejects(t *testing.T) {
	valid := func(m Msg) []byte { return m.Append(nil)[4:] }
	open := valid(Msg{Op: OpOpen, Name: "x", Specs: []backend.Spec{{Key: "k", Kind: backend.Resource, Capacity: 1}}})
	cases := map[string][]byte{
		"short header":    {byte(OpHello), 0, 0},
		"unknown op":      valid(Msg{Op: 0x42}),
		"no magic":        append([]byte{byte(OpHello), 0, 0, 0, 0, 0, 0, 0, 0}, "XXXX\x01"...),
		"trailing":        append(valid(Msg{Op: OpStats, SetID: 1}), 0),
		"truncated":       open[:len(open)-1],
		"short instance":  append([]byte{byte(OpHelloOK), 0, 0, 0, 0, 0, 0, 0, 0}, 2, 1, 0, 0),
		"too many values": valid(Msg{Op: OpCharge, SetID: 1, Values: make([]int64, MaxValues+1)}),
		"bad flags":       valid(Msg{Op: OpAcquire, Flags: 0x80}),
		"refusal flags":   valid(Msg{Op: OpRefused, Flags: 4}),
		"negative retry":  valid(Msg{Op: OpRefused, RetryAfter: -1}),
		"refused by 64":   valid(Msg{Op: OpRefused, Spec: MaxValues}),
		"queued on -2":    valid(Msg{Op: OpQueued, Spec: -2}),
		"pause of -2":     valid(Msg{Op: OpPause, Spec: -2}),
		"lower of -1":     valid(Msg{Op: OpLower, Spec: -1}),
		"huge count":      append([]byte{byte(OpSettled), 0, 0, 0, 0, 0, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0x0f),
		"overlong count":  append([]byte{byte(OpSettled), 0, 0, 0, 0, 0, 0, 0, 0}, 0x05, 1, 1),
	}
	for name, body := range cases {
		var m Msg
		if err := m.Decode(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

// TestDecodeLeavesTheContractToTheServer: definitions outside the contract
// (an empty or long name, a long key, too many limits, a bad capacity,
// window, kind or algorithm) decode, so that the server can refuse the one
// request with an error instead of closing the connection for a malformed
// frame.
func TestDecodeLeavesTheContractToTheServer(t *testing.T) {
	long := string(bytes.Repeat([]byte("k"), 2000))
	many := make([]backend.Spec, 300)
	for i := range many {
		many[i] = backend.Spec{Key: "k", Kind: backend.Resource, Capacity: 1}
	}
	for name, m := range map[string]Msg{
		"empty name":    {Op: OpOpen},
		"long name":     {Op: OpOpen, Name: long},
		"long key":      {Op: OpOpen, Name: "x", Specs: []backend.Spec{{Key: long, Kind: backend.Resource, Capacity: 1}}},
		"many limits":   {Op: OpOpen, Name: "x", Specs: many},
		"zero capacity": {Op: OpOpen, Name: "x", Specs: []backend.Spec{{Key: "k", Kind: backend.Resource}}},
		"zero window":   {Op: OpOpen, Name: "x", Specs: []backend.Spec{{Key: "k", Capacity: 1}}},
		"bad kind":      {Op: OpOpen, Name: "x", Specs: []backend.Spec{{Key: "k", Kind: 9, Capacity: 1}}},
		"bad algorithm": {Op: OpOpen, Name: "x", Specs: []backend.Spec{{Key: "k", Algorithm: 9, Window: 1, Capacity: 1}}},
	} {
		var got Msg
		if err := got.Decode(m.Append(nil)[4:]); err != nil || !equalMsg(m, got) {
			t.Errorf("%s: decoded %v (%v)", name, err, got.Op)
		}
	}
}

// TestOlderHelloOK: the HelloOK of a server of protocol version 1 (version
// and pid only) decodes, so that the client can say the versions differ.
func TestOlderHelloOK(t *testing.T) {
	body := []byte{byte(OpHelloOK), 0, 0, 0, 0, 0, 0, 0, 1, 1, 42}
	var m Msg
	if err := m.Decode(body); err != nil || m.Version != 1 || m.PID != 42 {
		t.Fatalf("a version 1 HelloOK: %+v, %v", m, err)
	}
}

func TestReaderLimits(t *testing.T) {
	big := Msg{Op: OpError, Text: string(make([]byte, 100))}
	_, err := NewReader(bytes.NewReader(big.Append(nil)), 64).Next()
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized frame: got %v", err)
	}
	_, err = NewReader(bytes.NewReader([]byte{0, 0, 0, 1, 0}), 0).Next()
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("undersized frame: got %v", err)
	}
	frame := (&Msg{Op: OpStats, SetID: 3}).Append(nil)
	_, err = NewReader(bytes.NewReader(frame[:len(frame)-1]), 0).Next()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated frame: got %v", err)
	}
	_, err = NewReader(bytes.NewReader(nil), 0).Next()
	if err != io.EOF {
		t.Errorf("empty stream: got %v", err)
	}
}

func TestRemoteError(t *testing.T) {
	for _, c := range codeErrors {
		err := error(&RemoteError{Code: c.code, Text: "x"})
		if !errors.Is(err, c.err) || CodeOf(c.err) != c.code {
			t.Errorf("code %d does not round-trip %v", c.code, c.err)
		}
	}
	if CodeOf(errors.New("other")) != CodeInternal || (&RemoteError{Code: CodePermission}).Unwrap() != nil {
		t.Error("unknown errors must map to CodeInternal and unwrap to nil")
	}
	if (&RemoteError{Code: CodeVersion}).Error() == "" {
		t.Error("empty message")
	}
}

// TestLongErrorText: an Error whose message is longer than a decoder
// accepts is cut to MaxText bytes, so that it still decodes.
func TestLongErrorText(t *testing.T) {
	m := Msg{Op: OpError, ID: 1, Code: CodeLimitMismatch, Text: string(bytes.Repeat([]byte("x"), 3*MaxText))}
	var got Msg
	if err := got.Decode(m.Append(nil)[4:]); err != nil || len(got.Text) != MaxText {
		t.Fatalf("a long error decoded with %d bytes of text: %v", len(got.Text), err)
	}
}

func TestOpString(t *testing.T) {
	if OpAcquire.String() != "Acquire" || Op(0x55).String() != "Op(0x55)" {
		t.Error(OpAcquire.String(), Op(0x55).String())
	}
}

// FuzzDecodeFrame feeds arbitrary bytes through the frame reader and the
// decoder of every frame type: nothing may panic, and whatever decodes must
// encode back to a message that decodes the same.
func FuzzDecodeFrame(f *testing.F) {
	var stream []byte
	for _, m := range samples() {
		frame := m.Append(nil)
		f.Add(frame)
		f.Add(frame[:len(frame)-1])
		stream = append(stream, frame...)
	}
	f.Add(stream)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), 1<<12)
		for {
			body, err := r.Next()
			if err != nil {
				return
			}
			var m Msg
			if m.Decode(body) != nil {
				continue
			}
			var again Msg
			if err := again.Decode(m.Append(nil)[4:]); err != nil {
				t.Fatalf("re-encoded %v does not decode: %v", m.Op, err)
			}
			if !equalMsg(m, again) {
				t.Fatalf("round trip changed the message:\n%+v\n%+v", m, again)
			}
		}
	})
}
