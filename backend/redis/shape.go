package redis

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/maphash"
	"slices"
	"strconv"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// shape is what a set derives from its specs alone: every set of the same
// specs through one Backend shares it (a Keyed's identities), so that
// opening a set computes no definition, digest or parameters. It is never
// modified once made.
type shape struct {
	specs   []backend.Spec
	def     string
	params  any    // a string: the definition's digest, the lease TTL and every spec's numbers, then the definition
	short   any    // a string: params' short form, "#" and its SHA-1 in hex (see state.lua)
	rate    []bool // per spec: a rate limit (else a resource)
	refunds []bool // per spec: a rate limit whose algorithm refunds
	lists   []int  // the specs (from 1) that keep a SlidingWindow list
	narrow  bool   // no resource and no list: the state is the set's one key (see state.lua)
}

// maxShapes bounds the shapes a Backend keeps: definitions are few (one per
// tier); a program that makes endless variants gets none kept.
const maxShapes = 1024

var shapeSeed = maphash.MakeSeed()

// shapeOf returns the shape of specs, kept or made.
func (b *Backend) shapeOf(specs []backend.Spec) *shape {
	var h maphash.Hash
	h.SetSeed(shapeSeed)
	for _, sp := range specs {
		h.WriteString(sp.Key)
		var buf [18]byte
		buf[0] = byte(sp.Kind)
		buf[1] = byte(sp.Algorithm)
		binary.LittleEndian.PutUint64(buf[2:], uint64(sp.Window))
		binary.LittleEndian.PutUint64(buf[10:], uint64(sp.Capacity))
		h.Write(buf[:])
	}
	sum := h.Sum64()
	b.mu.Lock()
	for _, sh := range b.shapes[sum] {
		if slices.Equal(sh.specs, specs) {
			b.mu.Unlock()
			return sh
		}
	}
	b.mu.Unlock()
	sh := newShape(specs, b.opts.LeaseTTL.Microseconds())
	b.mu.Lock()
	if b.nshapes < maxShapes {
		b.shapes[sum] = append(b.shapes[sum], sh)
		b.nshapes++
	}
	b.mu.Unlock()
	return sh
}

func newShape(specs []backend.Spec, ttl int64) *shape {
	sh := &shape{
		specs:   slices.Clone(specs),
		def:     define(specs),
		rate:    make([]bool, len(specs)),
		refunds: make([]bool, len(specs)),
	}
	sum := sha256.Sum256([]byte(sh.def))
	ps := strconv.AppendUint(nil, binary.BigEndian.Uint64(sum[:])>>12, 10) // below 2^52: exact in Lua
	ps = strconv.AppendInt(append(ps, ' '), ttl, 10)
	for i, sp := range specs {
		for _, v := range params(sp) {
			ps = strconv.AppendInt(append(ps, ' '), v, 10)
		}
		sh.rate[i] = sp.Kind == backend.Rate
		sh.refunds[i] = sp.Kind == backend.Rate && sp.Algorithm.Refunds()
		if sp.Kind == backend.Rate && sp.Algorithm == algorithms.SlidingWindow {
			sh.lists = append(sh.lists, i+1)
		}
	}
	sh.narrow = len(sh.lists) == 0 && !slices.Contains(sh.rate, false)
	ps = append(append(ps, ';'), sh.def...)
	digest := sha1.Sum(ps) // the short form's: Redis computes it too (redis.sha1hex), not a secret
	sh.params, sh.short = string(ps), "#"+hex.EncodeToString(digest[:])
	return sh
}
