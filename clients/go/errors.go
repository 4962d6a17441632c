package tuigateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Match them with errors.Is: the errors the client returns
// wrap them (an *ExitedError is ErrGatewayExited, a *StartError for a
// missing binary is ErrNotFound, an *RPCError for "unknown proc" is
// ErrProcessGone, ...).
var (
	// ErrNotFound: no gateway binary at Options.Bin, $TUI_GATEWAY_BIN or on
	// PATH, or it is not executable.
	ErrNotFound = errors.New("tui-gateway: binary not found")
	// ErrGatewayExited: the gateway ended while a call, a process handle or
	// a wait needed it. The error is an *ExitedError with the details.
	ErrGatewayExited = errors.New("tui-gateway: the gateway exited")
	// ErrClosed: a call after Close.
	ErrClosed = errors.New("tui-gateway: client closed")
	// ErrProcessGone: the process already ended (the gateway answered
	// "unknown proc" because its process.exit was sent, or nothing of it was
	// left to signal: ESRCH). Matched by an *RPCError.
	ErrProcessGone = errors.New("tui-gateway: the process already exited")
	// ErrOverloaded: -32001, a bounded resource is full (the child's stdin
	// queue, the process table); retry later. Matched by an *RPCError.
	ErrOverloaded = errors.New("tui-gateway: overloaded")
)

// RPCError is an error answer from the gateway: -32601 unknown method,
// -32602 bad params, -32000 the handler failed (data has details, such as
// the errno of a failed spawn), -32001 overloaded, ... (the repository's
// docs/protocol.md, "Error codes").
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
	// Method is the method of the call that got the answer.
	Method string `json:"-"`
}

func (e *RPCError) Error() string {
	var b strings.Builder
	if e.Method != "" {
		b.WriteString(e.Method)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "error %d: %s", e.Code, e.Message)
	if len(e.Data) > 0 && string(e.Data) != "null" {
		fmt.Fprintf(&b, " (data: %s)", e.Data)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrProcessGone) and errors.Is(err, ErrOverloaded)
// work on error answers.
func (e *RPCError) Is(target error) bool {
	switch target {
	case ErrOverloaded:
		return e.Code == -32001
	case ErrProcessGone:
		switch e.Code {
		case -32602:
			return strings.HasPrefix(e.Message, "unknown proc")
		case -32000:
			var data struct {
				Code string `json:"code"`
			}
			return json.Unmarshal(e.Data, &data) == nil && data.Code == "ESRCH"
		}
	}
	return false
}

// ExitedError says the gateway ended while it was needed. It is
// ErrGatewayExited for errors.Is.
type ExitedError struct {
	Exit GatewayExit
}

func (e *ExitedError) Error() string {
	return "tui-gateway exited: " + e.Exit.String()
}

// Is reports whether target is ErrGatewayExited.
func (e *ExitedError) Is(target error) bool { return target == ErrGatewayExited }

// StartError says why Start failed. It wraps ErrNotFound when there is no
// usable binary, an *ExitedError when the gateway exited before
// gateway.ready, and the context's error when the context ended first.
type StartError struct {
	// Message says what went wrong.
	Message string
	// Searched lists where the binary was looked for (when not found).
	Searched []string
	// TimedOut is set when no gateway.ready came within ReadyTimeout; the
	// gateway was killed.
	TimedOut bool
	// Exit is the gateway's exit when it ended before gateway.ready (or was
	// killed for being late).
	Exit *GatewayExit
	// Err is the underlying error.
	Err error
}

func (e *StartError) Error() string {
	var b strings.Builder
	b.WriteString("tui-gateway did not start: ")
	b.WriteString(e.Message)
	if len(e.Searched) > 0 {
		fmt.Fprintf(&b, " (looked at: %s); install it with `cargo install --locked --path .` in a checkout of tui-gateway, or set TUI_GATEWAY_BIN to the binary", strings.Join(e.Searched, ", "))
	}
	if e.Exit != nil {
		b.WriteString("; ")
		b.WriteString(e.Exit.String())
		if len(e.Exit.StderrTail) > 0 {
			b.WriteString("\nstderr:\n")
			b.WriteString(strings.Join(e.Exit.StderrTail, "\n"))
		}
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *StartError) Unwrap() error { return e.Err }
