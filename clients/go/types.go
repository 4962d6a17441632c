package tuigateway

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Ready is the gateway.ready payload, the first line the gateway writes.
// With a backend (Options.Args holding "--") it is the backend's payload with
// the gateway's own in its "gateway" member: read Raw.
type Ready struct {
	Version  string   `json:"version"`
	Pid      int      `json:"pid"`
	Protocol int      `json:"protocol"`
	Methods  []string `json:"methods"`
	// Limits holds every bound in force (max_frame_bytes, shutdown_grace_s,
	// max_processes, child_stdin_limit_bytes, ...).
	Limits map[string]float64 `json:"limits"`
	// Raw is the whole payload as it came.
	Raw json.RawMessage `json:"-"`
}

// Supports reports whether the gateway offers method.
func (r *Ready) Supports(method string) bool {
	for _, m := range r.Methods {
		if m == method {
			return true
		}
	}
	return false
}

// ShutdownGrace is the gateway's --shutdown-grace (1 s unless the ready
// payload says otherwise).
func (r *Ready) ShutdownGrace() time.Duration {
	if s, ok := r.Limits["shutdown_grace_s"]; ok && s > 0 && s < 3600 {
		return time.Duration(s * float64(time.Second))
	}
	return time.Second
}

// Info is the result of gateway.info.
type Info struct {
	Version       string                     `json:"version"`
	Pid           int                        `json:"pid"`
	Protocol      int                        `json:"protocol"`
	UptimeS       float64                    `json:"uptime_s"`
	Methods       []string                   `json:"methods"`
	Services      []string                   `json:"services"`
	Config        map[string]json.RawMessage `json:"config"`
	Client        json.RawMessage            `json:"client"`
	Limits        map[string]float64         `json:"limits"`
	ProcessTree   ProcessTree                `json:"process_tree"`
	ProcessLimits ProcessLimits              `json:"process_limits"`
	// Raw is the whole result as it came.
	Raw json.RawMessage `json:"-"`
}

// ProcessTree says how the gateway holds and kills descendants.
type ProcessTree struct {
	HeldBy       string `json:"held_by"`
	KilledAtExit string `json:"killed_at_exit"`
}

// ProcessLimits says how process.spawn's Limits are applied.
type ProcessLimits struct {
	Mechanism string `json:"mechanism"`
	Scope     string `json:"scope"`
	Cgroup    string `json:"cgroup"`
}

// PtySize is a terminal size, each 1 to 10000.
type PtySize struct {
	Rows int `json:"rows"`
	Cols int `json:"cols"`
}

// OutputLimit bounds what is forwarded of each output stream. Policy is
// "kill", "truncate" or "tail" (the repository's docs/process.md,
// "output_limit").
type OutputLimit struct {
	Bytes  int64  `json:"bytes"`
	Policy string `json:"policy"`
}

// Limits are resource limits set in the child before exec; zero fields are
// not sent.
type Limits struct {
	MemoryBytes   int64 `json:"memory_bytes,omitempty"`
	CPUSeconds    int64 `json:"cpu_seconds,omitempty"`
	OpenFiles     int64 `json:"open_files,omitempty"`
	Processes     int64 `json:"processes,omitempty"`
	FileSizeBytes int64 `json:"file_size_bytes,omitempty"`
}

// LadderStep is one step of a cancel ladder: send Signal (a name such as
// "SIGINT", or a number as a string) to the whole process tree, then wait
// WaitMs for it to end before the next step.
type LadderStep struct {
	Signal string
	WaitMs int
}

// Ladder is a cancel ladder of 1 to 8 steps; end it with SIGKILL. The last
// step's wait means nothing and is not sent when zero. A nil Ladder means
// "the default" (the spawn's Cancel, else SIGINT, 2 s, SIGTERM, 3 s,
// SIGKILL).
type Ladder []LadderStep

// MarshalJSON writes the wire form [[signal, wait_ms], ..., [signal]].
func (l Ladder) MarshalJSON() ([]byte, error) {
	steps := make([][]interface{}, 0, len(l))
	for i, s := range l {
		step := []interface{}{signalValue(s.Signal)}
		if i < len(l)-1 || s.WaitMs != 0 {
			step = append(step, s.WaitMs)
		}
		steps = append(steps, step)
	}
	return json.Marshal(steps)
}

// signalValue sends "9" as the number 9 and a name as a string.
func signalValue(sig string) interface{} {
	if n, err := strconv.Atoi(sig); err == nil {
		return n
	}
	return sig
}

// SpawnOptions are process.spawn's parameters (the repository's
// docs/process.md). Zero values are not sent, so the gateway's defaults
// apply.
type SpawnOptions struct {
	// Argv is the program and its arguments; Argv[0] is looked up in PATH.
	Argv []string
	// Cwd is the working directory (default: the gateway's).
	Cwd string
	// Env sets variables on top of the gateway's environment.
	Env map[string]string
	// UnsetEnv removes variables.
	UnsetEnv []string
	// ClearEnv starts from an empty environment (then applies Env).
	ClearEnv bool
	// Stdin is "pipe" (the default: fed by Write) or "null".
	Stdin string
	// Stderr is "pipe" (the default), "merge" (into stdout) or "null".
	Stderr string
	// Encoding is "utf8" (the default: invalid bytes become U+FFFD) or
	// "base64" (the exact bytes). Output.Data is bytes either way.
	Encoding string
	// Tag is any JSON-encodable label, echoed by ListProcesses.
	Tag interface{}
	// Pty runs the command on a pseudo-terminal of that size; its output
	// comes on stream "pty".
	Pty *PtySize
	// TimeoutMs cancels the process (with its ladder) this long after the
	// spawn; its exit then has Cause "timeout".
	TimeoutMs int
	// OutputLimit bounds the output forwarded per stream.
	OutputLimit *OutputLimit
	// Limits are resource limits (setrlimit, and a cgroup where delegated).
	Limits *Limits
	// Cancel is the process's cancel ladder (for Cancel, a timeout, a
	// "kill" output limit).
	Cancel Ladder
}

type spawnParams struct {
	Argv        []string           `json:"argv"`
	Cwd         string             `json:"cwd,omitempty"`
	Env         map[string]*string `json:"env,omitempty"`
	ClearEnv    bool               `json:"clear_env,omitempty"`
	Stdin       string             `json:"stdin,omitempty"`
	Stderr      string             `json:"stderr,omitempty"`
	Encoding    string             `json:"encoding,omitempty"`
	Tag         interface{}        `json:"tag,omitempty"`
	Pty         *PtySize           `json:"pty,omitempty"`
	TimeoutMs   int                `json:"timeout_ms,omitempty"`
	OutputLimit *OutputLimit       `json:"output_limit,omitempty"`
	Limits      *Limits            `json:"limits,omitempty"`
	Cancel      Ladder             `json:"cancel,omitempty"`
}

func (o *SpawnOptions) params() spawnParams {
	p := spawnParams{
		Argv:        o.Argv,
		Cwd:         o.Cwd,
		ClearEnv:    o.ClearEnv,
		Stdin:       o.Stdin,
		Stderr:      o.Stderr,
		Encoding:    o.Encoding,
		Tag:         o.Tag,
		Pty:         o.Pty,
		TimeoutMs:   o.TimeoutMs,
		OutputLimit: o.OutputLimit,
		Limits:      o.Limits,
		Cancel:      o.Cancel,
	}
	if len(o.Env) > 0 || len(o.UnsetEnv) > 0 {
		p.Env = make(map[string]*string, len(o.Env)+len(o.UnsetEnv))
		for _, k := range o.UnsetEnv {
			p.Env[k] = nil
		}
		for k, v := range o.Env {
			v := v
			p.Env[k] = &v
		}
	}
	return p
}

// Output is one chunk of a process's output.
type Output struct {
	// Stream is "stdout", "stderr", or "pty" for a process on a terminal.
	Stream string
	// Data is the bytes (decoded from base64 with Encoding "base64"; the
	// UTF-8 text otherwise). Empty for a Truncated marker.
	Data []byte
	// Truncated marks where a "kill" or "truncate" output limit stopped
	// forwarding the stream.
	Truncated bool
	// Skipped is, with a "tail" output limit, how many bytes were left out
	// before this chunk (0 otherwise).
	Skipped int64
}

// Exit is a process's process.exit payload.
type Exit struct {
	Proc int64 `json:"proc"`
	// Code is the exit status, nil when a signal killed it.
	Code *int `json:"code"`
	// Signal is the signal that killed it ("SIGTERM", ...), "" if none.
	Signal string `json:"signal"`
	// Cause is "exit", "signal", "cancel", "timeout", "output_limit",
	// "limit" or "shutdown".
	Cause string `json:"cause"`
	// DurationMs is from the spawn to the reaping.
	DurationMs int64 `json:"duration_ms"`
	// OutputBytes is the raw bytes written per stream, forwarded or not.
	OutputBytes map[string]int64 `json:"output_bytes"`
	// Discarded is the bytes not forwarded per stream (with OutputLimit).
	Discarded map[string]int64 `json:"discarded,omitempty"`
	// Limit names the limit that killed it (with Cause "limit").
	Limit string `json:"limit,omitempty"`
	// Usage is set when Limits were given.
	Usage *Usage `json:"usage,omitempty"`
	// Raw is the whole payload as it came.
	Raw json.RawMessage `json:"-"`
}

// Usage is the resource usage reported with Limits.
type Usage struct {
	MaxRSSBytes int64 `json:"max_rss_bytes"`
	UserMs      int64 `json:"user_ms"`
	SystemMs    int64 `json:"system_ms"`
	OOMKilled   bool  `json:"oom_killed"`
}

// Success reports an exit with code 0.
func (e *Exit) Success() bool { return e.Code != nil && *e.Code == 0 }

// ExitCode is the status as a shell reports it: the code, or 128+N for a
// process killed by signal N (-1 if neither is known).
func (e *Exit) ExitCode() int {
	if e.Code != nil {
		return *e.Code
	}
	if n := signalNumber(e.Signal); n > 0 {
		return 128 + n
	}
	return -1
}

func (e *Exit) String() string {
	var s string
	if e.Code != nil {
		s = fmt.Sprintf("exit %d", *e.Code)
	} else if e.Signal != "" {
		s = "killed by " + e.Signal
	} else {
		s = "exit unknown"
	}
	if e.Cause != "" && e.Cause != "exit" && e.Cause != "signal" {
		s += " (" + e.Cause + ")"
	}
	return s
}

// CancelResult is process.cancel's answer: Step is the index of the last
// ladder step sent before the tree ended and Signal its name; Code and
// ExitSignal are the process's own exit.
type CancelResult struct {
	Proc       int64  `json:"proc"`
	Step       int    `json:"step"`
	Signal     string `json:"signal"`
	Code       *int   `json:"code"`
	ExitSignal string `json:"exit_signal"`
}

// WriteResult is process.write's answer: the bytes accepted by the call
// and those still waiting for the child.
type WriteResult struct {
	Queued  int64 `json:"queued"`
	Pending int64 `json:"pending"`
}

// ProcessInfo is one entry of ListProcesses.
type ProcessInfo struct {
	Proc       int64           `json:"proc"`
	Pid        int             `json:"pid"`
	Argv       []string        `json:"argv"`
	Tag        json.RawMessage `json:"tag"`
	StartedAt  float64         `json:"started_at"`
	ElapsedMs  int64           `json:"elapsed_ms"`
	Running    bool            `json:"running"`
	Pty        *PtySize        `json:"pty,omitempty"`
	Cancelling bool            `json:"cancelling,omitempty"`
}

// Event is a notification from the gateway. For the gateway's events
// (method "event") Type and Payload are the event's; for any other
// notification Type is empty and Payload is its params.
type Event struct {
	Method  string
	Type    string
	Payload json.RawMessage
}

// GatewayExit describes how the gateway process ended.
type GatewayExit struct {
	Pid int
	// Code is the exit code, nil when a signal killed it.
	Code *int
	// Signal is the signal that killed it, "" if none.
	Signal string
	// Reason is the documented meaning of the code ("orderly shutdown",
	// "bad command line", ...; the repository's docs/protocol.md).
	Reason string
	// ExitReason is the gateway's own "[gateway-exit] <reason>" stderr
	// line without the prefix ("stdin EOF", ...), "" if it wrote none.
	ExitReason string
	// StderrTail is the last lines of its stderr (at most 50).
	StderrTail []string
	// OrphansKilled lists the process groups of commands the client killed
	// because the gateway died by a signal before it could.
	OrphansKilled []int
}

// Success reports an orderly exit (code 0).
func (e *GatewayExit) Success() bool { return e.Code != nil && *e.Code == 0 }

func (e *GatewayExit) String() string {
	var b strings.Builder
	switch {
	case e.Signal != "":
		fmt.Fprintf(&b, "killed by %s (no shutdown ran)", e.Signal)
	case e.Code != nil:
		fmt.Fprintf(&b, "exit code %d (%s)", *e.Code, e.Reason)
	default:
		b.WriteString("exit status unknown")
	}
	if e.ExitReason != "" {
		fmt.Fprintf(&b, ": %s", e.ExitReason)
	}
	return b.String()
}

func exitMeaning(code *int, signal string) string {
	if signal != "" {
		return "killed by a signal (no shutdown ran)"
	}
	if code == nil {
		return "unknown"
	}
	switch *code {
	case 0:
		return "orderly shutdown"
	case 3:
		return "stdout peer gone, stalled, or too slow"
	case 4:
		return "the shutdown deadline forced the exit"
	case 64:
		return "bad command line"
	case 69:
		return "the backend command cannot be started"
	case 70:
		return "internal error (a panic, or out of memory)"
	case 74:
		return "host I/O error writing stdout"
	}
	return "the backend's own status, or an unknown code"
}
