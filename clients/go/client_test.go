package tuigateway_test

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
	"syscall"
	"testing"
	"time"

	tuigateway "github.com/tui-gateway/tui-gateway/clients/go"
)

// These tests run the real gateway named by TUI_GATEWAY_BIN. Every wait is
// on a channel or a context with a generous deadline; nothing sleeps.

var gatewayBin string

func TestMain(m *testing.M) {
	gatewayBin = os.Getenv("TUI_GATEWAY_BIN")
	if gatewayBin == "" {
		fmt.Fprintln(os.Stderr, "FAIL: TUI_GATEWAY_BIN is not set. These tests run against the real gateway binary: "+
			"build it (cd ../.. && cargo build) and run TUI_GATEWAY_BIN=$PWD/../../target/debug/tui-gateway go test ./...")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

const deadline = 60 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T) *tuigateway.Gateway {
	t.Helper()
	gw, err := tuigateway.StartContext(testContext(t), tuigateway.Options{Bin: gatewayBin})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _, _ = gw.Close() })
	return gw
}

func spawn(t *testing.T, ctx context.Context, gw *tuigateway.Gateway, opts tuigateway.SpawnOptions) *tuigateway.Process {
	t.Helper()
	p, err := gw.SpawnProcess(ctx, opts)
	if err != nil {
		t.Fatalf("spawn %q: %v", opts.Argv, err)
	}
	return p
}

// collect reads the output until the channel closes: the bytes per stream.
func collect(t *testing.T, ctx context.Context, p *tuigateway.Process) map[string]string {
	t.Helper()
	got := map[string]string{}
	for {
		select {
		case o, ok := <-p.Output():
			if !ok {
				return got
			}
			got[o.Stream] += string(o.Data)
		case <-ctx.Done():
			t.Fatalf("output of %q did not end: %v (so far %q)", p.Argv(), ctx.Err(), got)
		}
	}
}

// readUntil reads output until the text of every stream so far holds want.
func readUntil(t *testing.T, ctx context.Context, p *tuigateway.Process, want string) string {
	t.Helper()
	var text strings.Builder
	for !strings.Contains(text.String(), want) {
		select {
		case o, ok := <-p.Output():
			if !ok {
				t.Fatalf("output of %q ended without %q: %q", p.Argv(), want, text.String())
			}
			text.Write(o.Data)
		case <-ctx.Done():
			t.Fatalf("no %q from %q: %v (so far %q)", want, p.Argv(), ctx.Err(), text.String())
		}
	}
	return text.String()
}

func wait(t *testing.T, ctx context.Context, p *tuigateway.Process) *tuigateway.Exit {
	t.Helper()
	exit, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("wait %q: %v", p.Argv(), err)
	}
	return exit
}

func TestPing(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	gw := start(t)
	if err := gw.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	ready := gw.Ready()
	if ready.Protocol != 1 || ready.Version == "" || ready.Pid != gw.Pid() {
		t.Errorf("ready = %+v, want protocol 1, a version and pid %d", ready, gw.Pid())
	}
	if !ready.Supports("process.spawn") || ready.Supports("no.such") {
		t.Errorf("Supports is wrong for methods %v", ready.Methods)
	}
	if ready.ShutdownGrace() != time.Second {
		t.Errorf("shutdown grace %v, want 1s", ready.ShutdownGrace())
	}
	info, err := gw.Info(ctx)
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	if info.Pid != gw.Pid() || info.Protocol != 1 || info.Limits["max_processes"] <= 0 || len(info.Raw) == 0 {
		t.Errorf("info = %+v", info)
	}
	raw, err := gw.Call(ctx, "gateway.ping", nil)
	if err != nil || string(raw) != `{"ok":true}` {
		t.Errorf("Call(gateway.ping) = %s, %v", raw, err)
	}
}

func TestSpawnEchoOutputAndExit(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	gw := start(t)
	p := spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"sh", "-c", "echo hello; echo oops >&2; exit 3"}})
	if p.Proc() <= 0 || p.Pid() <= 0 {
		t.Errorf("proc %d pid %d", p.Proc(), p.Pid())
	}
	got := collect(t, ctx, p)
	if got["stdout"] != "hello\n" || got["stderr"] != "oops\n" {
		t.Errorf("output = %q", got)
	}
	exit := wait(t, ctx, p)
	if exit.Code == nil || *exit.Code != 3 || exit.Signal != "" || exit.Cause != "exit" || exit.ExitCode() != 3 {
		t.Errorf("exit = %+v", exit)
	}
	if exit.OutputBytes["stdout"] != 6 || exit.OutputBytes["stderr"] != 5 {
		t.Errorf("output_bytes = %v", exit.OutputBytes)
	}
	if p.Running() || p.ExitStatus() != exit {
		t.Errorf("after the exit: running %v, status %v", p.Running(), p.ExitStatus())
	}

	// echo, plainly, and the base64 encoding of bytes that are not UTF-8.
	p = spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"echo", "hi there"}})
	if got := collect(t, ctx, p); got["stdout"] != "hi there\n" {
		t.Errorf("echo output = %q", got)
	}
	if exit := wait(t, ctx, p); !exit.Success() {
		t.Errorf("echo exit = %v", exit)
	}
	p = spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"printf", `\000\001\377\376`}, Encoding: "base64"})
	if got := collect(t, ctx, p); got["stdout"] != "\x00\x01\xff\xfe" {
		t.Errorf("base64 output = %q", got)
	}
	wait(t, ctx, p)
}

func TestPtySpawnOutput(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	gw := start(t)
	p := spawn(t, ctx, gw, tuigateway.SpawnOptions{
		Argv: []string{"sh", "-c", `test -t 0 && test -t 1 && echo "tty $TERM"; stty size; read line; stty size`},
		Pty:  &tuigateway.PtySize{Rows: 24, Cols: 80},
	})
	text := readUntil(t, ctx, p, "24 80\r\n")
	if !strings.Contains(text, "tty xterm-256color\r\n") {
		t.Errorf("not a terminal? output %q", text)
	}
	if err := p.Resize(ctx, 100, 30); err != nil {
		t.Fatalf("resize: %v", err)
	}
	if _, err := p.Write(ctx, []byte("\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	rest := collect(t, ctx, p)
	if !strings.Contains(rest["pty"], "30 100\r\n") || len(rest) != 1 {
		t.Errorf("after resize: %q", rest)
	}
	if exit := wait(t, ctx, p); !exit.Success() || exit.OutputBytes["pty"] == 0 {
		t.Errorf("exit = %+v", exit)
	}

	// Resizing a process without a terminal is -32602.
	q := spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"true"}})
	err := q.Resize(ctx, 80, 24)
	var rpcErr *tuigateway.RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32602 {
		t.Errorf("resize without pty: %v", err)
	}
	collect(t, ctx, q)
	wait(t, ctx, q)
}

func TestWriteAndCloseStdinWithCat(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	gw := start(t)
	p := spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"cat"}})
	r, err := p.Write(ctx, []byte("hello "))
	if err != nil || r.Queued != 6 {
		t.Fatalf("write = %+v, %v", r, err)
	}
	readUntil(t, ctx, p, "hello ")
	if _, err := p.Write(ctx, []byte("w\xf6rld\n")); err != nil { // not UTF-8: sent as base64
		t.Fatalf("write: %v", err)
	}
	if err := p.CloseStdin(ctx); err != nil {
		t.Fatalf("close_stdin: %v", err)
	}
	got := collect(t, ctx, p)
	if got["stdout"] != "w\ufffdrld\n" { // cat echoes the byte; utf8 output shows it as U+FFFD
		t.Errorf("output after close_stdin = %q", got)
	}
	if exit := wait(t, ctx, p); !exit.Success() || exit.OutputBytes["stdout"] != 12 {
		t.Errorf("exit = %+v", exit)
	}
	// Writing after the exit is -32602 "unknown proc".
	if _, err := p.Write(ctx, []byte("late")); !errors.Is(err, tuigateway.ErrProcessGone) {
		t.Errorf("write after exit: %v", err)
	}

	// WriteAll: more than the child's stdin limit, in pieces; cat echoes all.
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	p = spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"cat"}, Encoding: "base64"})
	done := make(chan map[string]string)
	go func() {
		got := map[string]string{}
		for o := range p.Output() {
			got[o.Stream] += string(o.Data)
		}
		done <- got
	}()
	total, err := p.WriteAll(ctx, big)
	if err != nil || total.Queued != int64(len(big)) {
		t.Fatalf("write all = %+v, %v", total, err)
	}
	if err := p.CloseStdin(ctx); err != nil {
		t.Fatalf("close_stdin: %v", err)
	}
	select {
	case got := <-done:
		if got["stdout"] != string(big) {
			t.Errorf("cat echoed %d bytes, want %d", len(got["stdout"]), len(big))
		}
	case <-ctx.Done():
		t.Fatal("cat output did not end")
	}
	wait(t, ctx, p)
}

func TestSignal(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	gw := start(t)
	p := spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"sleep", "100"}, Stdin: "null"})
	sent, err := p.Signal(ctx, "SIGTERM")
	if err != nil || !sent {
		t.Fatalf("signal = %v, %v", sent, err)
	}
	exit := wait(t, ctx, p)
	if exit.Code != nil || exit.Signal != "SIGTERM" || exit.Cause != "signal" || exit.ExitCode() != 128+15 {
		t.Errorf("exit = %+v", exit)
	}
	// Already exited: false, no error.
	if sent, err := p.Signal(ctx, "SIGINT"); sent || err != nil {
		t.Errorf("signal after exit = %v, %v", sent, err)
	}
	if sent, err := p.Kill(ctx); sent || err != nil {
		t.Errorf("kill after exit = %v, %v", sent, err)
	}
	// The gateway's own answer for it is -32602 "unknown proc".
	_, err = gw.Call(ctx, "process.signal", map[string]interface{}{"proc": p.Proc(), "signal": "SIGINT"})
	if !errors.Is(err, tuigateway.ErrProcessGone) {
		t.Errorf("raw signal after exit: %v", err)
	}

	// A number works as a name does; Kill is SIGKILL.
	p = spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"sleep", "100"}, Stdin: "null"})
	if sent, err := p.Signal(ctx, "10"); !sent || err != nil {
		t.Fatalf("signal 10 = %v, %v", sent, err)
	}
	if exit := wait(t, ctx, p); exit.Signal != "SIGUSR1" {
		t.Errorf("exit = %+v, want SIGUSR1", exit)
	}
	p = spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"sleep", "100"}, Stdin: "null"})
	if sent, err := p.Kill(ctx); !sent || err != nil {
		t.Fatalf("kill = %v, %v", sent, err)
	}
	if exit := wait(t, ctx, p); exit.Signal != "SIGKILL" {
		t.Errorf("exit = %+v, want SIGKILL", exit)
	}
}

func TestCancelLadder(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	gw := start(t)
	p := spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"sh", "-c", `trap "" INT; echo ready; sleep 100`}})
	readUntil(t, ctx, p, "ready") // the trap is set
	r, err := p.Cancel(ctx, tuigateway.Ladder{{Signal: "SIGINT", WaitMs: 100}, {Signal: "SIGKILL"}})
	if err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if r.Step != 1 || r.Signal != "SIGKILL" || r.ExitSignal != "SIGKILL" || r.Code != nil || r.Proc != p.Proc() {
		t.Errorf("cancel = %+v, want step 1 (SIGKILL)", r)
	}
	exit := wait(t, ctx, p) // its exit came before the cancel's answer
	if exit.Cause != "cancel" || exit.Signal != "SIGKILL" {
		t.Errorf("exit = %+v", exit)
	}
	// Cancelling after the exit is -32602.
	if _, err := p.Cancel(ctx, nil); !errors.Is(err, tuigateway.ErrProcessGone) {
		t.Errorf("cancel after exit: %v", err)
	}
}

func TestTimeoutCause(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	gw := start(t)
	p := spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"sleep", "100"}, TimeoutMs: 100})
	exit := wait(t, ctx, p)
	if exit.Cause != "timeout" || exit.Code != nil || exit.Signal != "SIGINT" {
		t.Errorf("exit = %+v, want cause timeout after SIGINT", exit)
	}
	if exit.DurationMs < 100 {
		t.Errorf("duration %d ms, before the timeout", exit.DurationMs)
	}
}

func TestRPCError(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	gw := start(t)
	_, err := gw.SpawnProcess(ctx, tuigateway.SpawnOptions{}) // no argv
	var rpcErr *tuigateway.RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32602 || rpcErr.Method != "process.spawn" || !strings.Contains(rpcErr.Message, "argv") {
		t.Fatalf("spawn without argv: %v", err)
	}
	_, err = gw.Call(ctx, "process.spawn", map[string]interface{}{"args": []string{"ls"}}) // a typo for argv
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32602 {
		t.Errorf("unknown member: %v", err)
	}
	_, err = gw.Call(ctx, "no.such.method", nil)
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32601 {
		t.Errorf("unknown method: %v", err)
	}
	_, err = gw.SpawnProcess(ctx, tuigateway.SpawnOptions{Argv: []string{"no-such-program-for-the-go-client"}})
	var data struct {
		Code string `json:"code"`
	}
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32000 || json.Unmarshal(rpcErr.Data, &data) != nil || data.Code != "ENOENT" {
		t.Errorf("missing program: %v", err)
	}
	p := spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"sleep", "100"}})
	if _, err := p.Signal(ctx, "SIGNOPE"); !errors.As(err, &rpcErr) || rpcErr.Code != -32602 {
		t.Errorf("unknown signal: %v", err)
	}
	// The gateway is still fine; bad params of our own are an error, not a panic.
	if _, err := gw.Call(ctx, "gateway.ping", json.RawMessage("{not json")); err == nil {
		t.Error("invalid raw params were sent")
	}
	if _, err := gw.Call(ctx, "gateway.ping", make(chan int)); err == nil {
		t.Error("params that cannot be encoded were sent")
	}
	if err := gw.Ping(ctx); err != nil {
		t.Errorf("ping after errors: %v", err)
	}
	// A cancelled context stops only the local wait: the process runs on.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Wait(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled context: %v", err)
	}
	if sent, err := p.Kill(ctx); !sent || err != nil {
		t.Errorf("kill = %v, %v: the process should still run", sent, err)
	}
	wait(t, ctx, p)
}

func TestSubscribe(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	gw := start(t)
	sub := gw.Subscribe("process.exit")
	p := spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"true"}})
	select {
	case ev := <-sub.C:
		var payload struct {
			Proc int64 `json:"proc"`
		}
		if ev.Method != "event" || ev.Type != "process.exit" || json.Unmarshal(ev.Payload, &payload) != nil || payload.Proc != p.Proc() {
			t.Errorf("event = %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no process.exit event")
	}
	sub.Close()
	select {
	case _, ok := <-sub.C:
		if ok {
			t.Error("an event after Close")
		}
	case <-ctx.Done():
		t.Fatal("C not closed after Close")
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	gw := start(t)
	p := spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"echo", "bye"}})
	collect(t, ctx, p)
	wait(t, ctx, p)
	exit, err := gw.Close()
	if err != nil || exit == nil || !exit.Success() || exit.ExitReason != "stdin EOF" || exit.Reason != "orderly shutdown" {
		t.Fatalf("close = %+v, %v", exit, err)
	}
	select {
	case <-gw.Done():
	default:
		t.Error("Done not closed after Close")
	}
	again, err := gw.Close()
	if err != nil || again.Code == nil || *again.Code != 0 {
		t.Errorf("second close = %+v, %v", again, err)
	}
	if err := gw.Ping(ctx); !errors.Is(err, tuigateway.ErrClosed) {
		t.Errorf("ping after close: %v", err)
	}
	if _, err := gw.SpawnProcess(ctx, tuigateway.SpawnOptions{Argv: []string{"true"}}); !errors.Is(err, tuigateway.ErrClosed) {
		t.Errorf("spawn after close: %v", err)
	}
	if gw.Notify("gateway.ping", nil) {
		t.Error("notify after close returned true")
	}

	// Close while a command runs: the gateway's drain ends it.
	gw = start(t)
	p = spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"sleep", "100"}})
	if exit, err := gw.Close(); err != nil || !exit.Success() {
		t.Fatalf("close with a running command = %+v, %v", exit, err)
	}
	// Its exit event (SIGTERM at 700 ms) came before the gateway's exit.
	if exit := wait(t, ctx, p); exit.Signal != "SIGTERM" || exit.Cause != "shutdown" {
		t.Errorf("exit = %+v", exit)
	}
}

func TestGatewayExit(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	gw := start(t)
	p := spawn(t, ctx, gw, tuigateway.SpawnOptions{Argv: []string{"sleep", "100"}, Stdin: "null"})
	if err := syscall.Kill(gw.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err := p.Wait(ctx)
	var exited *tuigateway.ExitedError
	if !errors.Is(err, tuigateway.ErrGatewayExited) || !errors.As(err, &exited) || exited.Exit.Signal != "SIGKILL" {
		t.Fatalf("wait after the gateway died: %v", err)
	}
	select {
	case <-gw.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed")
	}
	if _, ok := <-p.Output(); ok {
		t.Error("output after the gateway died")
	}
	if err := gw.Ping(ctx); !errors.Is(err, tuigateway.ErrGatewayExited) {
		t.Errorf("ping after the gateway died: %v", err)
	}
	if sent, err := p.Signal(ctx, "SIGTERM"); sent || !errors.Is(err, tuigateway.ErrGatewayExited) {
		t.Errorf("signal after the gateway died = %v, %v", sent, err)
	}
	exit, err := gw.Close()
	if exit == nil || exit.Signal != "SIGKILL" || !errors.Is(err, tuigateway.ErrGatewayExited) {
		t.Errorf("close after the gateway died = %+v, %v", exit, err)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	_, err := tuigateway.Start(tuigateway.Options{Bin: "/nonexistent/tui-gateway"})
	var startErr *tuigateway.StartError
	if !errors.Is(err, tuigateway.ErrNotFound) || !errors.As(err, &startErr) || len(startErr.Searched) == 0 {
		t.Errorf("missing binary: %v", err)
	}
	// A bad flag: the gateway exits 64 before gateway.ready.
	_, err = tuigateway.Start(tuigateway.Options{Bin: gatewayBin, Args: []string{"--no-such-flag"}})
	if !errors.As(err, &startErr) || startErr.Exit == nil || startErr.Exit.Code == nil || *startErr.Exit.Code != 64 ||
		!errors.Is(err, tuigateway.ErrGatewayExited) || len(startErr.Exit.StderrTail) == 0 {
		t.Errorf("bad flag: %v", err)
	}
	// No gateway.ready at all (--transparent with a silent backend): the
	// ready timeout kills it.
	_, err = tuigateway.Start(tuigateway.Options{
		Bin:          gatewayBin,
		Args:         []string{"--transparent", "--", "sleep", "100"},
		ReadyTimeout: 200 * time.Millisecond,
	})
	if !errors.As(err, &startErr) || !startErr.TimedOut || !errors.Is(err, context.DeadlineExceeded) || startErr.Exit == nil || startErr.Exit.Signal != "SIGKILL" {
		t.Errorf("no ready: %v", err)
	}
}

// TestExampleRun builds examples/run and runs a command through it: output
// on the terminal, the command's exit code, Ctrl+C as process.cancel.
func TestExampleRun(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	bin := filepath.Join(t.TempDir(), "run")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/run")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/run: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, "--", "sh", "-c", `test -t 1 && echo "on a tty"; exit 7`)
	cmd.Env = append(os.Environ(), "TUI_GATEWAY_BIN="+gatewayBin)
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 7 || string(out) != "on a tty\r\n" {
		t.Errorf("run: %v, output %q", err, out)
	}

	// SIGINT to the example cancels the command (Ctrl+C typed on its
	// terminal), whose trap exits 130. (Without the trap, dash can swallow
	// a SIGINT that lands just before it execs its last command, and the
	// ladder's SIGTERM comes 2 s later: a shell's race, not the client's.)
	cmd = exec.CommandContext(ctx, bin, "sh", "-c", `trap "exit 130" INT; echo ready; while :; do sleep 1; done`)
	cmd.Env = append(os.Environ(), "TUI_GATEWAY_BIN="+gatewayBin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(stdout)
	line, err := lines.ReadString('\n')
	if err != nil || line != "ready\r\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(lines)
	err = cmd.Wait()
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 130 {
		t.Errorf("run after SIGINT: %v, want exit 130; output after ready %q; stderr:\n%s", err, rest, stderr.String())
	}
}

// TestHandleRequest runs the gateway with a backend (a shell script) that
// sends the UI two requests once told to, and reports the UI's answers as
// events: one handled, one without a handler (-32601).
func TestHandleRequest(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	script := `read -r go_line
printf '%s\n' '{"jsonrpc":"2.0","id":"b1","method":"ui.confirm","params":{"q":"ok?"}}'
read -r a1
printf '{"jsonrpc":"2.0","method":"event","params":{"type":"answer","payload":%s}}\n' "$a1"
printf '%s\n' '{"jsonrpc":"2.0","id":"b2","method":"ui.unknown"}'
read -r a2
printf '{"jsonrpc":"2.0","method":"event","params":{"type":"answer","payload":%s}}\n' "$a2"
cat >/dev/null`
	gw, err := tuigateway.StartContext(ctx, tuigateway.Options{
		Bin:  gatewayBin,
		Args: []string{"--backend-ready", "none", "--", "sh", "-c", script},
	})
	if err != nil {
		t.Fatalf("start with a backend: %v", err)
	}
	t.Cleanup(func() { _, _ = gw.Close() })
	remove := gw.HandleRequest("ui.confirm", func(ctx context.Context, params json.RawMessage) (interface{}, error) {
		var p struct {
			Q string `json:"q"`
		}
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, &tuigateway.RPCError{Code: -32602, Message: err.Error()}
		}
		return map[string]string{"asked": p.Q}, nil
	})
	defer remove()
	sub := gw.Subscribe("answer")
	defer sub.Close()
	if !gw.Notify("backend.go", nil) {
		t.Fatal("notify returned false")
	}
	var answers []string
	for len(answers) < 2 {
		select {
		case ev := <-sub.C:
			answers = append(answers, string(ev.Payload))
		case <-ctx.Done():
			t.Fatalf("answers so far %q: %v", answers, ctx.Err())
		}
	}
	if answers[0] != `{"jsonrpc":"2.0","id":"b1","result":{"asked":"ok?"}}` {
		t.Errorf("handled request answered %s", answers[0])
	}
	var unhandled struct {
		ID    string               `json:"id"`
		Error *tuigateway.RPCError `json:"error"`
	}
	if json.Unmarshal([]byte(answers[1]), &unhandled) != nil || unhandled.ID != "b2" || unhandled.Error == nil || unhandled.Error.Code != -32601 {
		t.Errorf("unhandled request answered %s", answers[1])
	}
}
