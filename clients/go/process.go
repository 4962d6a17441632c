package tuigateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"
)

// writeAllPiece is the largest piece WriteAll sends in one process.write.
const writeAllPiece = 64 << 10

// Process is a command started by SpawnProcess. Its output comes in order
// on Output, then its exit on Wait; nothing is lost between the spawn and
// your first read. Its methods are safe for concurrent use.
type Process struct {
	g        *Gateway
	proc     int64
	pid      int
	argv     []string
	encoding string
	pty      bool

	out    *queue[Output]
	done   chan struct{}
	finish func(exit *Exit, err error)
	exit   *Exit
	err    error
}

// SpawnProcess runs a command (process.spawn). The handle exists as soon as
// the gateway's answer is read, so the first byte of output and an
// immediate exit reach it. Errors: *RPCError -32602 (bad options), -32000
// (the OS refused: its data holds the errno, e.g. "code": "ENOENT"), -32001
// (too many processes); *ExitedError; ErrClosed.
//
// Cancelling ctx stops only the local wait; if the process starts anyway,
// it is killed (SIGKILL) when its answer comes, since nobody holds it.
func (g *Gateway) SpawnProcess(ctx context.Context, opts SpawnOptions) (*Process, error) {
	var p *Process
	onResult := func(result json.RawMessage) {
		var r struct {
			Proc int64 `json:"proc"`
			Pid  int   `json:"pid"`
		}
		if json.Unmarshal(result, &r) != nil || r.Proc <= 0 {
			return
		}
		p = newProcess(g, r.Proc, r.Pid, &opts)
		g.mu.Lock()
		g.procs[r.Proc] = p
		g.mu.Unlock()
	}
	result, err := g.call(ctx, "process.spawn", opts.params(), onResult, true)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("tui-gateway: process.spawn: unexpected result %s", truncate(result))
	}
	return p, nil
}

func newProcess(g *Gateway, proc int64, pid int, opts *SpawnOptions) *Process {
	p := &Process{
		g:        g,
		proc:     proc,
		pid:      pid,
		argv:     append([]string(nil), opts.Argv...),
		encoding: opts.Encoding,
		pty:      opts.Pty != nil,
		out:      newQueue[Output](),
		done:     make(chan struct{}),
	}
	if p.encoding == "" {
		p.encoding = "utf8"
	}
	var once sync.Once
	p.finish = func(exit *Exit, err error) {
		once.Do(func() {
			p.exit, p.err = exit, err
			p.out.close()
			close(p.done)
		})
	}
	return p
}

// routeOutput hands a process.output event to its process (reader goroutine).
func (g *Gateway) routeOutput(payload json.RawMessage) {
	var o struct {
		Proc      int64  `json:"proc"`
		Stream    string `json:"stream"`
		Data      string `json:"data"`
		Truncated bool   `json:"truncated"`
		Skipped   int64  `json:"skipped"`
	}
	if json.Unmarshal(payload, &o) != nil {
		return
	}
	g.mu.Lock()
	p := g.procs[o.Proc]
	g.mu.Unlock()
	if p == nil {
		return
	}
	var data []byte
	if p.encoding == "base64" {
		// Each event carries whole 3-byte groups (the last may be padded),
		// so each decodes on its own.
		decoded, err := base64.StdEncoding.DecodeString(o.Data)
		if err != nil {
			decoded, err = base64.RawStdEncoding.DecodeString(o.Data)
		}
		if err != nil {
			decoded = []byte(o.Data)
		}
		data = decoded
	} else {
		data = []byte(o.Data)
	}
	p.out.push(Output{Stream: o.Stream, Data: data, Truncated: o.Truncated, Skipped: o.Skipped})
}

// routeExit hands a process.exit event to its process (reader goroutine).
func (g *Gateway) routeExit(payload json.RawMessage) {
	exit := &Exit{}
	if err := json.Unmarshal(payload, exit); err != nil && !isTypeError(err) {
		return
	}
	exit.Raw = append(json.RawMessage(nil), payload...)
	g.mu.Lock()
	p := g.procs[exit.Proc]
	delete(g.procs, exit.Proc)
	g.mu.Unlock()
	if p != nil {
		p.finish(exit, nil)
	}
}

// Proc is the gateway's id of the process.
func (p *Process) Proc() int64 { return p.proc }

// Pid is the OS pid, also the id of its process group (and of its session
// on a PTY).
func (p *Process) Pid() int { return p.pid }

// Argv is the command it runs.
func (p *Process) Argv() []string { return append([]string(nil), p.argv...) }

// Encoding is "utf8" or "base64", as spawned.
func (p *Process) Encoding() string { return p.encoding }

// Output delivers the output chunks in order. It is closed after the last
// chunk once the process has exited (or the gateway was lost). Chunks are
// buffered in the client until read, so read it to the end (a UI that does
// not want the output still drains it); the same channel is returned on
// every call.
func (p *Process) Output() <-chan Output { return p.out.channel() }

// Done is closed when the process's exit arrived, or when the gateway was
// lost first.
func (p *Process) Done() <-chan struct{} { return p.done }

// Running reports whether the exit has not arrived yet (and the gateway is
// still there).
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ExitStatus is the exit once it arrived, else nil.
func (p *Process) ExitStatus() *Exit {
	select {
	case <-p.done:
		return p.exit
	default:
		return nil
	}
}

// Wait waits for the process's exit event and returns it; it fails with an
// *ExitedError if the gateway exits first. Wait returns once the exit
// arrived, which the gateway sends after the last output: output not yet
// read from Output stays there, so a reader that drains Output until it is
// closed and then calls Wait sees everything in order.
//
// Cancelling ctx stops only the local wait: the process keeps running (use
// Cancel or Signal to end it).
func (p *Process) Wait(ctx context.Context) (*Exit, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case <-p.done:
		return p.result()
	case <-ctx.Done():
		select {
		case <-p.done:
			return p.result()
		default:
			return nil, ctx.Err()
		}
	}
}

func (p *Process) result() (*Exit, error) {
	if p.exit != nil {
		return p.exit, nil
	}
	return nil, p.err
}

func (p *Process) call(ctx context.Context, method string, params map[string]interface{}, out interface{}) error {
	params["proc"] = p.proc
	raw, err := p.g.Call(ctx, method, params)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("tui-gateway: %s: unexpected result %s: %w", method, truncate(raw), err)
		}
	}
	return nil
}

// Write sends data to the process's stdin (process.write; on a PTY, to the
// terminal: "\x03" is Ctrl+C). It is accepted whole or refused whole, never
// retried: an *RPCError -32001 (errors.Is ErrOverloaded) when the child's
// stdin queue cannot take it (nothing was queued), -32000 once stdin is
// closed, -32602 after the exit. Valid UTF-8 is sent as text, anything else
// as base64. Cancelling ctx stops only the local wait: the write may still
// be accepted.
func (p *Process) Write(ctx context.Context, data []byte) (WriteResult, error) {
	var r WriteResult
	params := map[string]interface{}{}
	if utf8.Valid(data) {
		params["data"] = string(data)
	} else {
		params["data"] = base64.StdEncoding.EncodeToString(data)
		params["encoding"] = "base64"
	}
	err := p.call(ctx, "process.write", params, &r)
	return r, err
}

// WriteAll writes data of any size: in pieces of at most 64 KiB (less when
// the gateway's child_stdin_limit_bytes is lower), each sent again after a
// short backoff while the child's stdin queue is full (-32001), until it
// fits. It returns the total queued and the last pending. It stops between
// pieces when ctx ends; the pieces already accepted stay queued.
func (p *Process) WriteAll(ctx context.Context, data []byte) (WriteResult, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	piece := writeAllPiece
	if limit := int(p.g.ready.Limits["child_stdin_limit_bytes"]); limit > 0 && limit < piece {
		piece = limit
	}
	var total WriteResult
	for first := true; first || len(data) > 0; first = false {
		n := len(data)
		if n > piece {
			n = piece
		}
		backoff := 5 * time.Millisecond
		for {
			r, err := p.Write(ctx, data[:n])
			if err == nil {
				total.Queued += r.Queued
				total.Pending = r.Pending
				break
			}
			if !errors.Is(err, ErrOverloaded) {
				return total, err
			}
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return total, ctx.Err()
			}
			if backoff < 200*time.Millisecond {
				backoff *= 2
			}
		}
		data = data[n:]
	}
	return total, nil
}

// CloseStdin closes the process's stdin so it reads EOF, after the bytes
// still queued (process.close_stdin; on a PTY it types the EOF character,
// Ctrl+D). -32602 after the exit.
func (p *Process) CloseStdin(ctx context.Context) error {
	return p.call(ctx, "process.close_stdin", map[string]interface{}{}, nil)
}

// Signal sends a signal ("SIGINT", "SIGTERM", ..., or a number as a string)
// to the process's group, so a shell's children get it too. It returns true
// once sent, and false, nil if the process had already exited (its exit
// was seen, or the gateway answered "unknown proc" or ESRCH). An unknown
// name is an *RPCError -32602. Cancelling ctx stops only the local wait:
// the signal may still be sent.
func (p *Process) Signal(ctx context.Context, sig string) (bool, error) {
	return p.signal(ctx, sig, false)
}

// SignalTree is Signal to the process and every descendant, whatever
// process group or session they moved to.
func (p *Process) SignalTree(ctx context.Context, sig string) (bool, error) {
	return p.signal(ctx, sig, true)
}

// Kill sends SIGKILL to the process group; false if it had already exited.
func (p *Process) Kill(ctx context.Context) (bool, error) { return p.signal(ctx, "SIGKILL", false) }

// Terminate sends SIGTERM to the process group; false if it had already
// exited.
func (p *Process) Terminate(ctx context.Context) (bool, error) {
	return p.signal(ctx, "SIGTERM", false)
}

func (p *Process) signal(ctx context.Context, sig string, tree bool) (bool, error) {
	select {
	case <-p.done:
		if p.exit != nil {
			return false, nil
		}
		return false, p.err
	default:
	}
	params := map[string]interface{}{"signal": signalValue(sig)}
	if tree {
		params["tree"] = true
	}
	err := p.call(ctx, "process.signal", params, nil)
	if errors.Is(err, ErrProcessGone) {
		return false, nil
	}
	return err == nil, err
}

// Resize sets the size of the process's terminal (process.resize; columns
// first, as node-pty and xterm.js have it); the program gets SIGWINCH.
// -32602 for a process spawned without Pty or a size outside 1 to 10000.
func (p *Process) Resize(ctx context.Context, cols, rows int) error {
	return p.call(ctx, "process.resize", map[string]interface{}{"cols": cols, "rows": rows}, nil)
}

// Cancel ends the process and everything below it with a cancel ladder
// (process.cancel): ladder, else the spawn's Cancel, else SIGINT, 2 s,
// SIGTERM, 3 s, SIGKILL (on a PTY a first SIGINT step types Ctrl+C). It
// returns only once nothing of the process tree is left, which can take the
// ladder's waits. Cancelling a process already being cancelled (a timeout,
// a "kill" output limit, an earlier Cancel) joins it. After the exit event:
// *RPCError -32602 (errors.Is ErrProcessGone).
//
// Cancelling ctx stops only the local wait: the ladder goes on.
func (p *Process) Cancel(ctx context.Context, ladder Ladder) (*CancelResult, error) {
	params := map[string]interface{}{}
	if len(ladder) > 0 {
		params["ladder"] = ladder
	}
	r := &CancelResult{}
	if err := p.call(ctx, "process.cancel", params, r); err != nil {
		return nil, err
	}
	return r, nil
}
