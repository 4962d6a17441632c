// Command run runs a command on a pseudo-terminal through tui-gateway and
// streams its output to this terminal. Ctrl+C (SIGINT) becomes
// process.cancel (on a terminal, its first step types Ctrl+C to the
// command, as a user would); a resize of this terminal is passed on. It
// exits with the command's exit code (128+N if signal N killed it).
//
//	go run ./examples/run -- sh -c 'printf "\033[32mgreen\033[0m\n"; stty size'
//
// The gateway binary is $TUI_GATEWAY_BIN, else tui-gateway on PATH. The
// command's input is not forwarded: this example only shows its output.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"unsafe"

	tuigateway "github.com/tui-gateway/tui-gateway/clients/go"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: run [--] COMMAND [ARG...]")
		return 2
	}
	ctx := context.Background()

	gw, err := tuigateway.Start(tuigateway.Options{Stderr: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		return 1
	}
	// The command has ended by the time this runs, so the gateway exits at
	// once.
	defer gw.Close()

	cols, rows := terminalSize()
	p, err := gw.SpawnProcess(ctx, tuigateway.SpawnOptions{
		Argv: args,
		Pty:  &tuigateway.PtySize{Rows: rows, Cols: cols},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		var rpcErr *tuigateway.RPCError
		if errors.As(err, &rpcErr) && rpcErr.Code == -32000 {
			return 127 // as a shell says for a command it cannot run
		}
		return 1
	}

	// Ctrl+C in this terminal reaches this program (the gateway ignores
	// SIGINT, and the command has a terminal of its own): cancel the
	// command with its ladder. A second Ctrl+C joins the first cancel.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGWINCH)
	defer signal.Stop(sigs)
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == os.Interrupt {
					go func() { _, _ = p.Cancel(ctx, nil) }()
				} else {
					c, r := terminalSize()
					_ = p.Resize(ctx, c, r)
				}
			case <-p.Done():
				return
			}
		}
	}()

	for chunk := range p.Output() {
		if _, err := os.Stdout.Write(chunk.Data); err != nil {
			_, _ = p.Kill(ctx)
		}
	}
	exit, err := p.Wait(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		return 1
	}
	return exit.ExitCode()
}

// terminalSize is this terminal's size (stdout's, else stdin's), or 80x24.
func terminalSize() (cols, rows int) {
	for _, f := range []*os.File{os.Stdout, os.Stdin} {
		var ws struct{ Row, Col, X, Y uint16 }
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(syscall.TIOCGWINSZ), uintptr(unsafe.Pointer(&ws)))
		if errno == 0 && ws.Col > 0 && ws.Row > 0 {
			return int(ws.Col), int(ws.Row)
		}
	}
	return 80, 24
}
