//! The README's first example: run a command through the gateway, print its
//! lines as they come, its exit, and close the gateway.
//!
//!   TUI_GATEWAY_BIN=target/debug/tui-gateway cargo run -p tui-gateway-client --example quickstart

use tui_gateway_client::{Gateway, GatewayOptions, SpawnOptions};

fn main() -> Result<(), tui_gateway_client::Error> {
    let gw = Gateway::spawn(GatewayOptions::default())?; // waits for gateway.ready
    let argv = ["sh", "-c", "echo hello; echo oops >&2; exit 3"];
    let mut proc = gw.spawn_process(argv, SpawnOptions::new())?;
    for line in proc.lines() {
        let line = line?;
        println!("[{}] {}", line.stream, line.line); // [stdout] hello, [stderr] oops
    }
    println!("{}", proc.wait()?); // exit 3 (after the last line)
    println!("{}", gw.close()?); // stdin EOF, wait, SIGTERM, SIGKILL: nothing left running
    Ok(())
}
