//! The `tui-gateway` binary: parse the command line, run, exit with the code.

use tui_gateway::{exit_code, Config, ConfigError};

/// The system allocator, with the gateway's exit path when it fails.
#[global_allocator]
static ALLOC: tui_gateway::shell::oom::GatewayAlloc = tui_gateway::shell::oom::GatewayAlloc;

fn main() {
    let config = Config::parse(std::env::args_os().skip(1), |name| std::env::var_os(name));
    let code = match config {
        Ok(config) => tui_gateway::shell::run(config),
        Err(ConfigError::Help) => {
            print!("{}", Config::help());
            0
        }
        Err(ConfigError::Version) => {
            println!("tui-gateway {}", tui_gateway::VERSION);
            0
        }
        Err(ConfigError::Man) => {
            print!("{}", tui_gateway::manual::man_page(tui_gateway::VERSION));
            0
        }
        Err(ConfigError::Completions(shell)) => {
            print!("{}", tui_gateway::manual::completions(shell));
            0
        }
        Err(err @ ConfigError::Usage(_)) => {
            eprintln!("tui-gateway: {err}");
            exit_code::USAGE
        }
    };
    std::process::exit(code);
}
