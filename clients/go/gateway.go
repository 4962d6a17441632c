package tuigateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	defaultReadyTimeout       = 10 * time.Second
	defaultBridgeReadyTimeout = 20 * time.Second
	defaultMaxLineBytes       = 64 << 20
	stderrTailLines           = 50
)

// Options say how to start the gateway. The zero value works when
// tui-gateway is on PATH or TUI_GATEWAY_BIN names it.
type Options struct {
	// Bin is the gateway binary: a path, or a name looked up in PATH.
	// Empty: $TUI_GATEWAY_BIN, else "tui-gateway" on PATH.
	Bin string
	// Args are the gateway's flags (and "--", CMD... for a backend).
	Args []string
	// Env holds "KEY=value" entries added to the current environment
	// (a later entry wins, as with exec.Cmd).
	Env []string
	// Dir is the gateway's working directory (default: the current one).
	Dir string
	// ReadyTimeout bounds the wait for gateway.ready: 10 s by default, 20 s
	// when Args hold "--" (a backend's ready can take up to 15 s).
	ReadyTimeout time.Duration
	// Stderr, if set, gets a copy of every line of the gateway's stderr.
	// The client always drains stderr and keeps its last lines.
	Stderr io.Writer
	// MaxLineBytes bounds one line of the gateway's stdout (default 64 MiB);
	// a longer line is skipped.
	MaxLineBytes int
}

// CloseOptions tune CloseWith.
type CloseOptions struct {
	// Grace is how long to wait for the gateway to exit after its stdin is
	// closed before sending it SIGTERM (and as long again before SIGKILL).
	// Default: its shutdown grace + 1 s.
	Grace time.Duration
	// Shutdown sends a gateway.shutdown notification first, so running
	// commands get SIGTERM at once instead of after most of the grace.
	Shutdown bool
}

// RequestHandler answers a request the gateway (or its backend) sent. Its
// result is sent as "result"; an *RPCError is sent with its code, any other
// error as -32000. ctx ends when the gateway exits.
type RequestHandler func(ctx context.Context, params json.RawMessage) (interface{}, error)

// Gateway is a running tui-gateway child process and the connection to it.
// Its methods are safe for concurrent use.
type Gateway struct {
	cmd   *exec.Cmd
	pid   int
	stdin *os.File

	ready     *Ready
	readyCh   chan struct{}
	readyOnce sync.Once

	writes chan []byte // a nil frame closes the gateway's stdin
	done   chan struct{}
	ctx    context.Context // ends with the gateway, for request handlers
	cancel context.CancelFunc

	mu        sync.Mutex
	nextID    int64
	pending   map[int64]*pendingCall
	abandoned map[int64]bool // process.spawn calls given up on
	procs     map[int64]*Process
	subs      map[*Subscription]struct{}
	handlers  map[string]*handlerEntry
	closing   bool
	exit      *GatewayExit
	exitErr   *ExitedError
	malformed int64

	stderrMu   sync.Mutex
	stderrTail []string
	exitReason string
	stderrDone chan struct{}

	maxLine int

	closeOnce sync.Once
	closeExit *GatewayExit
	closeErr  error
}

type handlerEntry struct{ h RequestHandler }

type pendingCall struct {
	method   string
	ch       chan callResult
	onResult func(json.RawMessage) // run by the reader before the next line
	spawn    bool
}

type callResult struct {
	result json.RawMessage
	err    error
}

// Start launches the gateway and waits for its gateway.ready (at most
// opts.ReadyTimeout). See StartContext.
func Start(opts Options) (*Gateway, error) {
	return StartContext(context.Background(), opts)
}

// StartContext launches the gateway and waits for its gateway.ready, at most
// opts.ReadyTimeout and until ctx ends; if either passes first the gateway is
// killed. ctx bounds only the start: it does not stop the gateway later.
func StartContext(ctx context.Context, opts Options) (*Gateway, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, &StartError{Message: "not started: " + err.Error(), Err: err}
	}
	bin, searched, err := locate(opts.Bin)
	if err != nil {
		return nil, &StartError{Message: err.Error(), Searched: searched, Err: ErrNotFound}
	}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (*os.File, *os.File, error) {
		r, w, err := os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	stdinR, stdinW, err1 := pipe()
	stdoutR, stdoutW, err2 := pipe()
	stderrR, stderrW, err3 := pipe()
	if err := firstErr(err1, err2, err3); err != nil {
		closeAll()
		return nil, &StartError{Message: "cannot make pipes: " + err.Error(), Err: err}
	}
	cmd := exec.Command(bin, opts.Args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, stderrW
	cmd.Dir = opts.Dir
	if len(opts.Env) > 0 {
		cmd.Env = append(os.Environ(), opts.Env...)
	}
	if err := cmd.Start(); err != nil {
		closeAll()
		var wrapped error = err
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.ENOEXEC) {
			wrapped = fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		return nil, &StartError{Message: fmt.Sprintf("cannot run %s: %v", bin, err), Err: wrapped}
	}
	// The child holds its own copies of these.
	stdinR.Close()
	stdoutW.Close()
	stderrW.Close()

	maxLine := opts.MaxLineBytes
	if maxLine <= 0 {
		maxLine = defaultMaxLineBytes
	}
	g := &Gateway{
		cmd:        cmd,
		pid:        cmd.Process.Pid,
		stdin:      stdinW,
		readyCh:    make(chan struct{}),
		writes:     make(chan []byte),
		done:       make(chan struct{}),
		pending:    make(map[int64]*pendingCall),
		abandoned:  make(map[int64]bool),
		procs:      make(map[int64]*Process),
		subs:       make(map[*Subscription]struct{}),
		handlers:   make(map[string]*handlerEntry),
		stderrDone: make(chan struct{}),
		maxLine:    maxLine,
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	go g.readStderr(stderrR, opts.Stderr)
	go g.writeLoop()
	go g.readLoop(stdoutR)

	timeout := opts.ReadyTimeout
	if timeout <= 0 {
		timeout = defaultReadyTimeout
		for _, a := range opts.Args {
			if a == "--" {
				timeout = defaultBridgeReadyTimeout
				break
			}
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-g.readyCh:
		return g, nil
	case <-g.done:
		exit := *g.exit
		return nil, &StartError{Message: "the gateway exited before gateway.ready", Exit: &exit, Err: g.exitErr}
	case <-timer.C:
		g.killNow()
		<-g.done
		exit := *g.exit
		return nil, &StartError{
			Message:  fmt.Sprintf("no gateway.ready within %v (the gateway was killed)", timeout),
			TimedOut: true,
			Exit:     &exit,
			Err:      context.DeadlineExceeded,
		}
	case <-ctx.Done():
		g.killNow()
		<-g.done
		exit := *g.exit
		return nil, &StartError{Message: "gave up waiting for gateway.ready: " + ctx.Err().Error(), Exit: &exit, Err: ctx.Err()}
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// locate finds the binary: bin, else $TUI_GATEWAY_BIN, else tui-gateway on
// PATH.
func locate(bin string) (string, []string, error) {
	source := "Options.Bin"
	if bin == "" {
		bin = os.Getenv("TUI_GATEWAY_BIN")
		source = "TUI_GATEWAY_BIN"
	}
	if bin == "" {
		searched := []string{"Options.Bin (empty)", "TUI_GATEWAY_BIN (unset)"}
		path, err := exec.LookPath("tui-gateway")
		if err != nil {
			searched = append(searched, "tui-gateway on PATH ("+os.Getenv("PATH")+")")
			return "", searched, errors.New("tui-gateway not found")
		}
		return path, nil, nil
	}
	if !strings.Contains(bin, "/") {
		path, err := exec.LookPath(bin)
		if err != nil {
			return "", []string{fmt.Sprintf("%s=%s on PATH (%s)", source, bin, os.Getenv("PATH"))}, fmt.Errorf("%s not found", bin)
		}
		return path, nil, nil
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		abs = bin
	}
	info, err := os.Stat(abs)
	if err != nil {
		return "", []string{fmt.Sprintf("%s=%s", source, abs)}, fmt.Errorf("%s: %v", abs, err)
	}
	if info.IsDir() || info.Mode()&0o111 == 0 {
		return "", []string{fmt.Sprintf("%s=%s", source, abs)}, fmt.Errorf("%s is not an executable file", abs)
	}
	return abs, nil, nil
}

// Ready returns the gateway.ready payload.
func (g *Gateway) Ready() *Ready { return g.ready }

// Pid is the gateway's process id.
func (g *Gateway) Pid() int { return g.pid }

// Done is closed once the gateway has exited and every pending call,
// process handle and subscription was ended.
func (g *Gateway) Done() <-chan struct{} { return g.done }

// ExitStatus is the gateway's exit once Done is closed, else nil.
func (g *Gateway) ExitStatus() *GatewayExit {
	select {
	case <-g.done:
		exit := *g.exit
		return &exit
	default:
		return nil
	}
}

// Call sends a request and waits for its answer: the result as raw JSON,
// an *RPCError for an error answer, an *ExitedError if the gateway exits
// first, ErrClosed after Close. params may be nil (none sent), a
// json.RawMessage, or anything encoding/json can marshal.
//
// Cancelling ctx stops only the local wait: the request was (or will be)
// written and still runs in the gateway; its late answer is dropped.
func (g *Gateway) Call(ctx context.Context, method string, params interface{}) (json.RawMessage, error) {
	return g.call(ctx, method, params, nil, false)
}

func (g *Gateway) call(ctx context.Context, method string, params interface{}, onResult func(json.RawMessage), spawn bool) (json.RawMessage, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if method == "" {
		return nil, errors.New("tui-gateway: empty method name")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tui-gateway: %s: %w", method, err)
	}
	raw, err := encodeParams(method, params)
	if err != nil {
		return nil, err
	}
	pc := &pendingCall{method: method, ch: make(chan callResult, 1), onResult: onResult, spawn: spawn}
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return nil, ErrClosed
	}
	if g.exitErr != nil {
		err := g.exitErr
		g.mu.Unlock()
		return nil, err
	}
	g.nextID++
	id := g.nextID
	g.pending[id] = pc
	g.mu.Unlock()

	frame, err := json.Marshal(request{JSONRPC: "2.0", ID: &id, Method: method, Params: raw})
	if err != nil {
		g.forget(id)
		return nil, fmt.Errorf("tui-gateway: %s: %w", method, err)
	}
	select {
	case g.writes <- append(frame, '\n'):
	case <-g.done: // the answer on pc.ch is the exit
	case <-ctx.Done():
		if g.forget(id) {
			return nil, fmt.Errorf("tui-gateway: %s: %w", method, ctx.Err())
		}
	}
	select {
	case r := <-pc.ch:
		return r.result, r.err
	case <-ctx.Done():
		if g.forget(id) {
			return nil, fmt.Errorf("tui-gateway: %s: %w", method, ctx.Err())
		}
		// The answer was taken by the reader meanwhile: it is on its way.
		r := <-pc.ch
		return r.result, r.err
	}
}

// forget removes a pending call; false if it was already answered (its
// result is then sent on its channel). A process.spawn given up on is
// remembered, so that the process is killed if it started.
func (g *Gateway) forget(id int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	pc, ok := g.pending[id]
	if !ok {
		return false
	}
	delete(g.pending, id)
	if pc.spawn && g.exitErr == nil {
		g.abandoned[id] = true
	}
	return true
}

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      *int64          `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

func encodeParams(method string, params interface{}) (json.RawMessage, error) {
	switch p := params.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if len(p) == 0 {
			return nil, nil
		}
		if !json.Valid(p) {
			return nil, fmt.Errorf("tui-gateway: %s: params are not valid JSON", method)
		}
		return p, nil
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("tui-gateway: %s: cannot encode params: %w", method, err)
	}
	return raw, nil
}

// Notify sends a notification (no answer comes). It returns true once the
// frame is handed to the writer (frames are written whole, in order), false
// when there is no gateway to send to (closed or exited) or params cannot be
// encoded.
func (g *Gateway) Notify(method string, params interface{}) bool {
	g.mu.Lock()
	gone := g.closing || g.exitErr != nil
	g.mu.Unlock()
	if gone {
		return false
	}
	return g.notify(method, params)
}

func (g *Gateway) notify(method string, params interface{}) bool {
	raw, err := encodeParams(method, params)
	if err != nil {
		return false
	}
	frame, err := json.Marshal(request{JSONRPC: "2.0", Method: method, Params: raw})
	if err != nil {
		return false
	}
	select {
	case g.writes <- append(frame, '\n'):
		return true
	case <-g.done:
		return false
	}
}

func (g *Gateway) decodeResult(ctx context.Context, method string, params interface{}, out interface{}) error {
	raw, err := g.Call(ctx, method, params)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("tui-gateway: %s: unexpected result %s: %w", method, truncate(raw), err)
	}
	return nil
}

func truncate(raw []byte) string {
	if len(raw) > 200 {
		return string(raw[:200]) + "..."
	}
	return string(raw)
}

// Ping calls gateway.ping.
func (g *Gateway) Ping(ctx context.Context) error {
	var r struct {
		OK bool `json:"ok"`
	}
	if err := g.decodeResult(ctx, "gateway.ping", nil, &r); err != nil {
		return err
	}
	if !r.OK {
		return errors.New("tui-gateway: gateway.ping: answer without ok: true")
	}
	return nil
}

// Info calls gateway.info.
func (g *Gateway) Info(ctx context.Context) (*Info, error) {
	raw, err := g.Call(ctx, "gateway.info", nil)
	if err != nil {
		return nil, err
	}
	info := &Info{Raw: raw}
	if err := json.Unmarshal(raw, info); err != nil && !isTypeError(err) {
		return nil, fmt.Errorf("tui-gateway: gateway.info: unexpected result: %w", err)
	}
	return info, nil
}

// Stats calls gateway.stats: counters by name (see docs/protocol.md).
func (g *Gateway) Stats(ctx context.Context) (map[string]json.RawMessage, error) {
	var stats map[string]json.RawMessage
	if err := g.decodeResult(ctx, "gateway.stats", nil, &stats); err != nil {
		return nil, err
	}
	return stats, nil
}

// Capabilities sends client.capabilities with a description of the client
// (nil sends an empty object) and returns the gateway's answer.
func (g *Gateway) Capabilities(ctx context.Context, client interface{}) (json.RawMessage, error) {
	if client == nil {
		client = struct{}{}
	}
	return g.Call(ctx, "client.capabilities", client)
}

// ListProcesses calls process.list.
func (g *Gateway) ListProcesses(ctx context.Context) ([]ProcessInfo, error) {
	var list []ProcessInfo
	if err := g.decodeResult(ctx, "process.list", nil, &list); err != nil {
		return nil, err
	}
	return list, nil
}

// HandleRequest installs the handler for requests the gateway (or its
// backend) sends with method; it returns a function that removes it.
// Requests without a handler are answered -32601.
func (g *Gateway) HandleRequest(method string, h RequestHandler) (remove func()) {
	entry := &handlerEntry{h: h}
	g.mu.Lock()
	if h == nil {
		delete(g.handlers, method)
	} else {
		g.handlers[method] = entry
	}
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		// Only remove this handler, not a later one for the same method.
		if g.handlers[method] == entry {
			delete(g.handlers, method)
		}
	}
}

// Subscription receives the gateway's events on C, in order, until Close or
// the gateway's exit (then C is closed after the events already received).
// Events are buffered for a slow reader, never dropped: read C, or Close
// the subscription.
type Subscription struct {
	// C delivers the events.
	C     <-chan Event
	g     *Gateway
	types map[string]bool
	q     *queue[Event]
}

// Subscribe returns a subscription to the events of the given types
// ("process.exit", ...; for a notification other than "event", its method),
// or to every event and notification when none is given.
func (g *Gateway) Subscribe(types ...string) *Subscription {
	s := &Subscription{g: g, q: newQueue[Event]()}
	if len(types) > 0 {
		s.types = make(map[string]bool, len(types))
		for _, t := range types {
			s.types[t] = true
		}
	}
	s.C = s.q.channel()
	g.mu.Lock()
	if g.exitErr != nil {
		s.q.close()
	} else {
		g.subs[s] = struct{}{}
	}
	g.mu.Unlock()
	return s
}

// Close ends the subscription: C is closed, events not yet read are
// dropped.
func (s *Subscription) Close() {
	s.g.mu.Lock()
	delete(s.g.subs, s)
	s.g.mu.Unlock()
	s.q.halt()
}

func (s *Subscription) wants(ev *Event) bool {
	if s.types == nil {
		return true
	}
	if ev.Method == "event" {
		return s.types[ev.Type]
	}
	return s.types[ev.Method]
}

// Close closes the gateway's stdin, waits for it to exit and returns its
// exit: the gateway stops reading, lets running commands run for most of its
// shutdown grace (with the default 1 s: SIGTERM at 700 ms, SIGKILL at
// 850 ms), flushes and exits 0. If it has not exited after its grace + 1 s
// it gets SIGTERM, and SIGKILL after its grace + 0.5 s more. The error is
// nil for a clean exit (code 0), else an *ExitedError with the same exit.
// Close is idempotent; calls made after it fail with ErrClosed. To let a
// command finish, Wait for it before closing.
func (g *Gateway) Close() (*GatewayExit, error) {
	return g.CloseWith(CloseOptions{})
}

// CloseWith is Close with options.
func (g *Gateway) CloseWith(opts CloseOptions) (*GatewayExit, error) {
	g.closeOnce.Do(func() {
		g.mu.Lock()
		g.closing = true
		g.mu.Unlock()
		go func() {
			if opts.Shutdown {
				g.notify("gateway.shutdown", nil)
			}
			select {
			case g.writes <- nil:
			case <-g.done:
			}
		}()
		grace := g.ready.ShutdownGrace()
		first := opts.Grace
		if first <= 0 {
			first = grace + time.Second
		}
		if !g.waitDone(first) {
			g.signalGateway(syscall.SIGTERM)
			if !g.waitDone(grace + 500*time.Millisecond) {
				g.killNow()
				<-g.done
			}
		}
		exit := *g.exit
		g.closeExit = &exit
		if !exit.Success() {
			g.closeErr = g.exitErr
		}
	})
	exit := *g.closeExit
	return &exit, g.closeErr
}

func (g *Gateway) waitDone(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-g.done:
		return true
	case <-t.C:
		return false
	}
}

// signalGateway signals the gateway itself; os.Process never signals a pid
// it has reaped, so a reused pid is never hit.
func (g *Gateway) signalGateway(sig os.Signal) {
	_ = g.cmd.Process.Signal(sig)
}

func (g *Gateway) killNow() { g.signalGateway(syscall.SIGKILL) }

// writeLoop writes frames whole and in order; it is the only writer of the
// gateway's stdin, and the reader never waits for it.
func (g *Gateway) writeLoop() {
	closed, broken := false, false
	for {
		select {
		case frame := <-g.writes:
			if frame == nil {
				if !closed {
					closed = true
					g.stdin.Close()
				}
				continue
			}
			if closed || broken {
				continue
			}
			if _, err := g.stdin.Write(frame); err != nil {
				// The gateway is going; the reader sees its exit and fails
				// the pending calls.
				broken = true
			}
		case <-g.done:
			if !closed {
				g.stdin.Close()
			}
			return
		}
	}
}

func (g *Gateway) readStderr(r *os.File, copyTo io.Writer) {
	defer close(g.stderrDone)
	defer r.Close()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			if copyTo != nil {
				_, _ = io.WriteString(copyTo, line)
			}
			text := strings.TrimRight(line, "\r\n")
			if len(text) > 4096 {
				text = text[:4096] + "..."
			}
			g.stderrMu.Lock()
			if strings.HasPrefix(text, "[gateway-exit] ") {
				g.exitReason = strings.TrimPrefix(text, "[gateway-exit] ")
			}
			if len(g.stderrTail) == stderrTailLines {
				copy(g.stderrTail, g.stderrTail[1:])
				g.stderrTail = g.stderrTail[:stderrTailLines-1]
			}
			g.stderrTail = append(g.stderrTail, text)
			g.stderrMu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// readLoop reads the gateway's stdout line by line (split on "\n" only) and
// dispatches each line before reading the next; at EOF it records the exit.
func (g *Gateway) readLoop(r *os.File) {
	defer g.finish()
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	skipping := false
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if !skipping && len(line)+len(chunk) > g.maxLine {
				skipping, line = true, nil
			}
			if !skipping {
				line = append(line, chunk...)
			}
			continue
		}
		if err != nil {
			// EOF: an unterminated last line is a truncated frame, dropped.
			return
		}
		if skipping {
			skipping = false
			g.countMalformed()
			continue
		}
		if len(line) == 0 {
			g.dispatch(chunk[:len(chunk)-1])
			continue
		}
		if len(line)+len(chunk) > g.maxLine {
			g.countMalformed()
		} else {
			line = append(line, chunk...)
			g.dispatch(line[:len(line)-1])
		}
		if cap(line) > 1<<20 {
			line = nil
		} else {
			line = line[:0]
		}
	}
}

func (g *Gateway) countMalformed() {
	g.mu.Lock()
	g.malformed++
	g.mu.Unlock()
}

type message struct {
	ID     json.RawMessage `json:"id"`
	Method *string         `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
}

func (g *Gateway) dispatch(line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	if line[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(line, &batch); err != nil {
			g.countMalformed()
			return
		}
		for _, m := range batch {
			g.dispatchMessage(m)
		}
		return
	}
	g.dispatchMessage(line)
}

func (g *Gateway) dispatchMessage(raw []byte) {
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		g.countMalformed()
		return
	}
	switch {
	case m.Method != nil && m.ID != nil:
		g.handleRequest(*m.Method, m.ID, m.Params)
	case m.Method != nil:
		g.handleNotification(*m.Method, m.Params)
	case m.ID != nil:
		g.handleResponse(&m)
	default:
		g.countMalformed()
	}
}

func (g *Gateway) handleResponse(m *message) {
	var id int64
	if err := json.Unmarshal(m.ID, &id); err != nil {
		return // id null (an answer to a frame the gateway could not read) or not ours
	}
	g.mu.Lock()
	pc := g.pending[id]
	delete(g.pending, id)
	abandoned := g.abandoned[id]
	delete(g.abandoned, id)
	g.mu.Unlock()
	if pc == nil {
		if abandoned && m.Error == nil {
			// A spawn given up on did start: do not leave it running.
			var r struct {
				Proc int64 `json:"proc"`
			}
			if json.Unmarshal(m.Result, &r) == nil && r.Proc > 0 {
				go g.notify("process.signal", map[string]interface{}{"proc": r.Proc, "signal": "SIGKILL"})
			}
		}
		return
	}
	if m.Error != nil {
		m.Error.Method = pc.method
		pc.ch <- callResult{err: m.Error}
		return
	}
	result := m.Result
	if result == nil {
		result = json.RawMessage("null")
	}
	if pc.onResult != nil {
		pc.onResult(result)
	}
	pc.ch <- callResult{result: result}
}

func (g *Gateway) handleRequest(method string, id json.RawMessage, params json.RawMessage) {
	var h RequestHandler
	g.mu.Lock()
	if entry := g.handlers[method]; entry != nil {
		h = entry.h
	}
	g.mu.Unlock()
	// Answered from another goroutine: the reader never waits for a write.
	go func() {
		resp := struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Result  interface{}     `json:"result,omitempty"`
			Error   *RPCError       `json:"error,omitempty"`
		}{JSONRPC: "2.0", ID: id}
		if h == nil {
			resp.Error = &RPCError{Code: -32601, Message: "Method not found: " + method}
		} else {
			result, err := runHandler(g.ctx, h, params)
			var rpcErr *RPCError
			switch {
			case errors.As(err, &rpcErr):
				resp.Error = rpcErr
			case err != nil:
				resp.Error = &RPCError{Code: -32000, Message: err.Error()}
			case result == nil:
				resp.Result = json.RawMessage("null")
			default:
				resp.Result = result
			}
		}
		frame, err := json.Marshal(resp)
		if err != nil {
			resp.Result = nil
			resp.Error = &RPCError{Code: -32603, Message: "cannot encode the result: " + err.Error()}
			if frame, err = json.Marshal(resp); err != nil {
				return
			}
		}
		select {
		case g.writes <- append(frame, '\n'):
		case <-g.done:
		}
	}()
}

// runHandler runs h, turning a panic into an error answer.
func runHandler(ctx context.Context, h RequestHandler, params json.RawMessage) (result interface{}, err error) {
	defer func() {
		if p := recover(); p != nil {
			result, err = nil, fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h(ctx, params)
}

type eventParams struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

func (g *Gateway) handleNotification(method string, params json.RawMessage) {
	ev := Event{Method: method, Payload: params}
	if method == "event" {
		var p eventParams
		if err := json.Unmarshal(params, &p); err != nil {
			g.countMalformed()
			return
		}
		ev.Type, ev.Payload = p.Type, p.Payload
		switch p.Type {
		case "gateway.ready":
			g.readyOnce.Do(func() {
				ready := &Ready{Raw: p.Payload}
				_ = json.Unmarshal(p.Payload, ready) // a field of another shape stays zero
				g.ready = ready
				close(g.readyCh)
			})
		case "process.output":
			g.routeOutput(p.Payload)
		case "process.exit":
			g.routeExit(p.Payload)
		}
	}
	g.mu.Lock()
	for s := range g.subs {
		if s.wants(&ev) {
			s.q.push(ev)
		}
	}
	g.mu.Unlock()
}

func isTypeError(err error) bool {
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}

// finish runs once the gateway's stdout ended: it reaps the gateway,
// records its exit and ends every pending call, process handle and
// subscription with it.
func (g *Gateway) finish() {
	_ = g.cmd.Wait()
	// Its stderr ends with it (no child of it holds the gateway's stderr).
	t := time.NewTimer(2 * time.Second)
	select {
	case <-g.stderrDone:
	case <-t.C:
	}
	t.Stop()
	exit := GatewayExit{Pid: g.pid}
	if ps := g.cmd.ProcessState; ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
			switch {
			case ws.Signaled():
				exit.Signal = signalName(ws.Signal())
			case ws.Exited():
				code := ws.ExitStatus()
				exit.Code = &code
			}
		}
	}
	exit.Reason = exitMeaning(exit.Code, exit.Signal)
	g.stderrMu.Lock()
	exit.ExitReason = g.exitReason
	exit.StderrTail = append([]string(nil), g.stderrTail...)
	g.stderrMu.Unlock()

	g.mu.Lock()
	pending, procs, subs := g.pending, g.procs, g.subs
	g.pending, g.procs, g.subs = map[int64]*pendingCall{}, map[int64]*Process{}, map[*Subscription]struct{}{}
	g.abandoned = map[int64]bool{}
	if exit.Signal != "" {
		// Killed: it ran no shutdown, so its commands may still run. Each
		// leads its own process group.
		for _, p := range procs {
			if leadsGroup(p.pid) && syscall.Kill(-p.pid, syscall.SIGKILL) == nil {
				exit.OrphansKilled = append(exit.OrphansKilled, p.pid)
			}
		}
	}
	g.exit = &exit
	g.exitErr = &ExitedError{Exit: exit}
	g.mu.Unlock()

	for _, pc := range pending {
		pc.ch <- callResult{err: g.exitErr}
	}
	for _, p := range procs {
		p.finish(nil, g.exitErr)
	}
	for s := range subs {
		s.q.close()
	}
	g.readyOnce.Do(func() { g.ready = &Ready{} })
	g.cancel()
	close(g.done)
}
