package worker

// ring is a FIFO queue in a circular buffer that grows as needed and shrinks
// when mostly empty. The zero value is an empty queue.
type ring[E any] struct {
	buf  []E
	head int
	n    int
}

func (r *ring[E]) len() int { return r.n }

func (r *ring[E]) push(e E) {
	if r.n == len(r.buf) {
		r.resize(max(8, 2*len(r.buf)))
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
}

func (r *ring[E]) pop() E {
	var zero E
	e := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	if len(r.buf) > 64 && r.n < len(r.buf)/4 {
		r.resize(len(r.buf) / 2)
	}
	return e
}

// remove deletes the first element for which match is true.
func (r *ring[E]) remove(match func(E) bool) {
	for k := range r.n {
		if !match(r.buf[(r.head+k)%len(r.buf)]) {
			continue
		}
		for ; k < r.n-1; k++ {
			r.buf[(r.head+k)%len(r.buf)] = r.buf[(r.head+k+1)%len(r.buf)]
		}
		var zero E
		r.buf[(r.head+r.n-1)%len(r.buf)] = zero
		r.n--
		return
	}
}

func (r *ring[E]) resize(size int) {
	buf := make([]E, size)
	for k := range r.n {
		buf[k] = r.buf[(r.head+k)%len(r.buf)]
	}
	r.buf, r.head = buf, 0
}
