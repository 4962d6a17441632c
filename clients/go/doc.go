// Package tuigateway is the Go client of tui-gateway: it starts the gateway
// binary as a child process, speaks its newline-delimited JSON-RPC 2.0 over
// the child's stdin and stdout, and runs commands through it on pipes or
// pseudo-terminals, streaming their output on channels (what a bubbletea
// program turns into messages).
//
//	gw, err := tuigateway.Start(tuigateway.Options{}) // waits for gateway.ready
//	if err != nil { ... }
//	defer gw.Close()
//	p, err := gw.SpawnProcess(ctx, tuigateway.SpawnOptions{Argv: []string{"make"}})
//	for chunk := range p.Output() { ... chunk.Stream, chunk.Data ... }
//	exit, err := p.Wait(ctx) // exit.Code, exit.Signal, exit.Cause, ...
//
// One reader goroutine reads the gateway's stdout: it hands answers to the
// calls waiting for them (matched by id) and events to the processes and
// subscriptions they belong to, buffering for slow readers so that it never
// blocks; one writer goroutine writes frames whole and in order. Every
// wait takes a context, and cancelling it stops only the local wait: the
// request already sent still runs in the gateway (a process keeps running,
// a cancel ladder goes on).
//
// The wire contract is the repository's docs/protocol.md and
// docs/process.md; clients/README.md maps the names of the Node and Python
// clients, which this one follows in Go's spelling.
package tuigateway
