package tuigateway

import "sync"

// queue is an unbounded FIFO in front of a channel. The reader goroutine
// pushes without ever blocking (a slow consumer must not stop it from
// reading the gateway's stdout, or answers to calls would stall and the
// gateway would declare its reader gone); a pump goroutine, started on first
// use, feeds the channel and closes it after the last item once the queue is
// closed, or at once when stopped.
type queue[T any] struct {
	mu      sync.Mutex
	items   []T
	closed  bool
	started bool
	wake    chan struct{}
	stop    chan struct{}
	stopped bool
	out     chan T
}

func newQueue[T any]() *queue[T] {
	return &queue[T]{
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		out:  make(chan T),
	}
}

// push appends v; it is dropped if the queue was closed.
func (q *queue[T]) push(v T) {
	q.mu.Lock()
	if q.closed || q.stopped {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.poke()
}

// close ends the queue: the channel is closed after the items already in it.
func (q *queue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.poke()
}

// halt closes the channel without delivering what is left.
func (q *queue[T]) halt() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return
	}
	q.stopped = true
	q.items = nil
	close(q.stop)
	if !q.started {
		q.started = true
		close(q.out)
	}
}

func (q *queue[T]) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// channel returns the output channel, starting the pump on first use.
func (q *queue[T]) channel() <-chan T {
	q.mu.Lock()
	if !q.started {
		q.started = true
		go q.pump()
	}
	q.mu.Unlock()
	return q.out
}

func (q *queue[T]) pump() {
	defer close(q.out)
	var zero T
	for {
		q.mu.Lock()
		for len(q.items) == 0 && !q.closed && !q.stopped {
			q.mu.Unlock()
			select {
			case <-q.wake:
			case <-q.stop:
			}
			q.mu.Lock()
		}
		if q.stopped || len(q.items) == 0 {
			q.mu.Unlock()
			return
		}
		v := q.items[0]
		q.items[0] = zero
		q.items = q.items[1:]
		if len(q.items) == 0 {
			q.items = nil // let a large backlog's array go
		}
		q.mu.Unlock()
		select {
		case q.out <- v:
		case <-q.stop:
			return
		}
	}
}
