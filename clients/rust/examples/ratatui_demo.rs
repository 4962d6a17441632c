//! A small shell on tui-gateway, drawn with ratatui.
//!
//! Type a command and press Enter: it runs through the gateway on a
//! pseudo-terminal the size of the output area (`sh -c <line>`), and its
//! output scrolls above the prompt with its colours (SGR escapes become
//! ratatui styles; other escapes are stripped).
//!
//! Keys:
//!   Enter        run the command (while one runs: send the line to its stdin)
//!   Ctrl+C       interrupt the running command (process.cancel: SIGINT, then
//!                SIGTERM, then SIGKILL); the demo never gets SIGINT (raw mode)
//!   Ctrl+D       close the running command's stdin; on an empty prompt: quit
//!   q            quit, on an empty prompt while no command runs
//!   PgUp / PgDn  scroll the output
//!
//! Quitting closes the gateway, which stops anything still running.
//!
//!   cargo build -p tui-gateway                # or: cargo install --locked --path .
//!   TUI_GATEWAY_BIN=target/debug/tui-gateway cargo run -p tui-gateway-client --example ratatui_demo
//!
//! `TUI_GATEWAY_DEMO_PIDFILE`: if set, the demo writes
//! `{"demo": pid, "gateway": pid, "commands": [pid, ...]}` there (the tmux test
//! uses it to check that nothing is left running).

use std::collections::VecDeque;
use std::sync::mpsc::{self, Sender};
use std::thread;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::{DefaultTerminal, Frame};
use tui_gateway_client::{
    CancelResult, Gateway, GatewayOptions, LadderStep, ProcessControl, ProcessEvent, ProcessExit,
    PtySize, SpawnOptions,
};

const PROMPT: &str = "demo$ ";
const SCROLLBACK_LINES: usize = 5000;
/// An escape sequence cut by a chunk's end is held at most this long.
const MAX_PENDING_ESCAPE: usize = 64;

// -- SGR: escapes to ratatui styles --------------------------------------------

/// The 16 basic colours, by SGR index (30-37 / 90-97).
fn basic_color(n: u16) -> Color {
    match n {
        0 => Color::Black,
        1 => Color::Red,
        2 => Color::Green,
        3 => Color::Yellow,
        4 => Color::Blue,
        5 => Color::Magenta,
        6 => Color::Cyan,
        7 => Color::Gray,
        8 => Color::DarkGray,
        9 => Color::LightRed,
        10 => Color::LightGreen,
        11 => Color::LightYellow,
        12 => Color::LightBlue,
        13 => Color::LightMagenta,
        14 => Color::LightCyan,
        _ => Color::White,
    }
}

/// Applies one SGR sequence's parameters (`"1;31"`) to a style.
fn apply_sgr(mut style: Style, params: &str) -> Style {
    let codes: Vec<u16> = if params.is_empty() {
        vec![0]
    } else {
        params
            .split([';', ':'])
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    let mut i = 0;
    while i < codes.len() {
        match codes[i] {
            0 => style = Style::default(),
            1 => style = style.add_modifier(Modifier::BOLD),
            2 => style = style.add_modifier(Modifier::DIM),
            3 => style = style.add_modifier(Modifier::ITALIC),
            4 => style = style.add_modifier(Modifier::UNDERLINED),
            7 => style = style.add_modifier(Modifier::REVERSED),
            22 => style = style.remove_modifier(Modifier::BOLD | Modifier::DIM),
            23 => style = style.remove_modifier(Modifier::ITALIC),
            24 => style = style.remove_modifier(Modifier::UNDERLINED),
            27 => style = style.remove_modifier(Modifier::REVERSED),
            c @ 30..=37 => style.fg = Some(basic_color(c - 30)),
            39 => style.fg = None,
            c @ 40..=47 => style.bg = Some(basic_color(c - 40)),
            49 => style.bg = None,
            c @ 90..=97 => style.fg = Some(basic_color(c - 90 + 8)),
            c @ 100..=107 => style.bg = Some(basic_color(c - 100 + 8)),
            c @ (38 | 48) => {
                // 38;5;n (256 colours) or 38;2;r;g;b (true colour).
                let color = match codes.get(i + 1) {
                    Some(5) if i + 2 < codes.len() => {
                        let n = codes[i + 2];
                        i += 2;
                        Some(if n < 16 {
                            basic_color(n)
                        } else {
                            Color::Indexed(n.min(255) as u8)
                        })
                    }
                    Some(2) if i + 4 < codes.len() => {
                        let [r, g, b] =
                            [codes[i + 2], codes[i + 3], codes[i + 4]].map(|v| v.min(255) as u8);
                        i += 4;
                        Some(Color::Rgb(r, g, b))
                    }
                    _ => None,
                };
                if c == 38 {
                    style.fg = color.or(style.fg);
                } else {
                    style.bg = color.or(style.bg);
                }
            }
            _ => {}
        }
        i += 1;
    }
    style
}

/// What an escape at the start of `s` is: its length and, for SGR, its params.
enum Escape<'a> {
    Sgr(&'a str, usize),
    Other(usize),
    /// Cut off at the end of the text.
    Incomplete,
}

fn parse_escape(s: &str) -> Escape<'_> {
    let b = s.as_bytes();
    debug_assert_eq!(b.first(), Some(&0x1b));
    match b.get(1) {
        None => Escape::Incomplete,
        Some(b'[') => {
            // CSI: parameters 0x30-0x3f, intermediates 0x20-0x2f, final 0x40-0x7e.
            let mut i = 2;
            while i < b.len() && (0x30..=0x3f).contains(&b[i]) {
                i += 1;
            }
            let params_end = i;
            while i < b.len() && (0x20..=0x2f).contains(&b[i]) {
                i += 1;
            }
            match b.get(i) {
                None => Escape::Incomplete,
                Some(b'm') if params_end == i => Escape::Sgr(&s[2..params_end], i + 1),
                Some(&f) if (0x40..=0x7e).contains(&f) => Escape::Other(i + 1),
                Some(_) => Escape::Other(i), // malformed: drop what we read
            }
        }
        Some(b']') => {
            // OSC: up to BEL or ESC \.
            let mut i = 2;
            while i < b.len() {
                match b[i] {
                    0x07 => return Escape::Other(i + 1),
                    0x1b if b.get(i + 1) == Some(&b'\\') => return Escape::Other(i + 2),
                    0x1b if i + 1 == b.len() => return Escape::Incomplete,
                    0x1b => return Escape::Other(i),
                    _ => i += 1,
                }
            }
            Escape::Incomplete
        }
        Some(_) => {
            // ESC, intermediates 0x20-0x2f, a final 0x30-0x7e.
            let mut i = 1;
            while i < b.len() && (0x20..=0x2f).contains(&b[i]) {
                i += 1;
            }
            match b.get(i) {
                None => Escape::Incomplete,
                Some(&f) if (0x30..=0x7e).contains(&f) => Escape::Other(i + 1),
                Some(_) => Escape::Other(i),
            }
        }
    }
}

/// The output model: finished lines plus the line being written.
#[derive(Default)]
struct Screen {
    lines: VecDeque<Line<'static>>,
    current: Vec<Span<'static>>,
    style: Style,
    /// An escape cut at a chunk's end, completed by the next chunk.
    pending: String,
    carriage_return: bool,
}

impl Screen {
    fn feed(&mut self, chunk: &str) {
        let mut text = std::mem::take(&mut self.pending);
        text.push_str(chunk);
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let stop = rest.find(|c: char| c.is_control()).unwrap_or(rest.len());
            if stop > 0 {
                self.text(&rest[..stop]);
                rest = &rest[stop..];
                continue;
            }
            let c = rest.chars().next().expect("not empty");
            if c == '\x1b' {
                match parse_escape(rest) {
                    Escape::Sgr(params, len) => {
                        self.style = apply_sgr(self.style, params);
                        rest = &rest[len..];
                    }
                    Escape::Other(len) => rest = &rest[len.max(1)..],
                    Escape::Incomplete if rest.len() < MAX_PENDING_ESCAPE => {
                        self.pending = rest.to_string();
                        return;
                    }
                    Escape::Incomplete => rest = &rest[1..],
                }
                continue;
            }
            match c {
                '\n' => self.newline(),
                '\r' => self.carriage_return = true,
                '\t' => {
                    let width: usize = self.current.iter().map(|s| s.content.chars().count()).sum();
                    self.text(&" ".repeat(8 - width % 8));
                }
                '\x08' | '\x7f' => self.backspace(),
                _ => {} // other control characters are stripped
            }
            rest = &rest[c.len_utf8()..];
        }
    }

    fn text(&mut self, text: &str) {
        if self.carriage_return {
            // A bare \r (a progress bar): the next text rewrites the line.
            self.current.clear();
            self.carriage_return = false;
        }
        match self.current.last_mut() {
            Some(last) if last.style == self.style => last.content.to_mut().push_str(text),
            _ => self
                .current
                .push(Span::styled(text.to_string(), self.style)),
        }
    }

    fn backspace(&mut self) {
        if let Some(last) = self.current.last_mut() {
            last.content.to_mut().pop();
            if last.content.is_empty() {
                self.current.pop();
            }
        }
    }

    fn newline(&mut self) {
        self.carriage_return = false;
        let line = Line::from(std::mem::take(&mut self.current));
        if self.lines.len() == SCROLLBACK_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// Ends a last line without a newline, and resets the colours (at a command's end).
    fn finish_command(&mut self) {
        self.pending.clear();
        if !self.current.is_empty() {
            self.newline();
        }
        self.style = Style::default();
    }

    fn message(&mut self, text: impl Into<String>, style: Style) {
        self.finish_command();
        self.current.push(Span::styled(text.into(), style));
        self.newline();
    }
}

// -- the application --------------------------------------------------------------

enum AppEvent {
    Term(TermEvent),
    /// An event of the command with this run number.
    Proc(u64, ProcessEvent),
    /// Its events ended without an exit (the gateway exited).
    ProcLost(u64, String),
    /// The answer of `process.cancel` (the exit event says how it ended).
    Cancelled(Result<CancelResult, tui_gateway_client::Error>),
}

struct Running {
    run: u64,
    control: ProcessControl,
    line: String,
}

struct App {
    gw: Gateway,
    screen: Screen,
    input: String,
    running: Option<Running>,
    runs: u64,
    tx: Sender<AppEvent>,
    quit: bool,
    scroll: usize,
    /// The output area's size: the PTY size of the next command.
    output_size: PtySize,
    pidfile: Option<String>,
    command_pids: Vec<u32>,
}

fn info_style() -> Style {
    Style::default().fg(Color::Cyan).add_modifier(Modifier::DIM)
}
fn fail_style() -> Style {
    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
}
fn ok_style() -> Style {
    Style::default()
        .fg(Color::Green)
        .add_modifier(Modifier::DIM)
}

impl App {
    fn write_pidfile(&self) {
        let Some(path) = &self.pidfile else { return };
        let commands: Vec<String> = self.command_pids.iter().map(u32::to_string).collect();
        let json = format!(
            "{{\"demo\": {}, \"gateway\": {}, \"commands\": [{}]}}",
            std::process::id(),
            self.gw.pid(),
            commands.join(", ")
        );
        let tmp = format!("{path}.tmp");
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    fn set_size(&mut self, cols: u16, rows: u16) {
        self.output_size = PtySize::new(cols.max(1), rows.saturating_sub(2).max(1));
    }

    fn on_key(&mut self, key: KeyEvent) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => self.interrupt(),
            KeyCode::Char('d') if ctrl => match &self.running {
                Some(running) => {
                    if let Err(e) = running.control.close_stdin() {
                        self.screen
                            .message(format!("[close_stdin: {e}]"), fail_style());
                    }
                }
                None if self.input.is_empty() => self.quit = true,
                None => {}
            },
            KeyCode::Char('u') if ctrl => self.input.clear(),
            KeyCode::Char('q') if !ctrl && self.input.is_empty() && self.running.is_none() => {
                self.quit = true
            }
            KeyCode::Char(c) if !ctrl => self.input.push(c),
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Enter => {
                let line = std::mem::take(&mut self.input);
                self.scroll = 0;
                self.submit(line);
            }
            KeyCode::PageUp => self.scroll += usize::from(self.output_size.rows.max(2) - 1),
            KeyCode::PageDown => {
                self.scroll = self
                    .scroll
                    .saturating_sub(usize::from(self.output_size.rows.max(2) - 1))
            }
            _ => {}
        }
    }

    fn submit(&mut self, line: String) {
        if let Some(running) = &self.running {
            // The terminal echoes what it is sent.
            if let Err(e) = running.control.write_all(format!("{line}\n")) {
                self.screen.message(format!("[write: {e}]"), fail_style());
            }
            return;
        }
        if line.trim().is_empty() {
            return;
        }
        self.screen.message(
            format!("$ {line}"),
            Style::default().add_modifier(Modifier::BOLD),
        );
        let options = SpawnOptions::new().pty(self.output_size).cancel(vec![
            LadderStep::new("SIGINT", 1000),
            LadderStep::new("SIGTERM", 1000),
            LadderStep::last("SIGKILL"),
        ]);
        let mut process = match self.gw.spawn_process(["sh", "-c", line.as_str()], options) {
            Ok(process) => process,
            Err(e) => {
                self.screen
                    .message(format!("[cannot run: {e}]"), fail_style());
                return;
            }
        };
        self.runs += 1;
        let run = self.runs;
        self.command_pids.push(process.pid());
        self.write_pidfile();
        self.running = Some(Running {
            run,
            control: process.control(),
            line,
        });
        let tx = self.tx.clone();
        thread::spawn(move || {
            for event in process.events() {
                let message = match event {
                    Ok(event) => AppEvent::Proc(run, event),
                    Err(e) => AppEvent::ProcLost(run, e.to_string()),
                };
                if tx.send(message).is_err() {
                    return;
                }
            }
        });
    }

    fn interrupt(&mut self) {
        let Some(running) = &self.running else {
            self.input.clear();
            return;
        };
        // On a PTY the ladder's first step types ^C, which the terminal echoes.
        // process.cancel answers once the tree is gone: off the UI thread.
        let (control, tx) = (running.control.clone(), self.tx.clone());
        thread::spawn(move || {
            let result = control.cancel(None);
            let _ = tx.send(AppEvent::Cancelled(result));
        });
    }

    fn on_exit(&mut self, exit: &ProcessExit) {
        let (text, style) = match (&exit.signal, exit.code) {
            (Some(sig), _) => (format!("[killed by {sig}]"), fail_style()),
            (None, Some(0)) => ("[exit 0]".to_string(), ok_style()),
            (None, Some(code)) => (format!("[exit {code}]"), fail_style()),
            (None, None) => ("[ended]".to_string(), fail_style()),
        };
        let cause = match exit.cause.as_str() {
            "exit" | "signal" => String::new(),
            cause => format!(" ({cause})"),
        };
        self.screen.message(format!("{text}{cause}"), style);
        self.running = None;
    }

    fn on_event(&mut self, event: AppEvent) {
        match event {
            AppEvent::Term(TermEvent::Key(key)) if key.kind != KeyEventKind::Release => {
                self.on_key(key)
            }
            AppEvent::Term(TermEvent::Resize(cols, rows)) => {
                self.set_size(cols, rows);
                if let Some(running) = &self.running {
                    let _ = running.control.resize(self.output_size);
                }
            }
            AppEvent::Term(TermEvent::Paste(text)) => self.input.push_str(&text),
            AppEvent::Term(_) => {}
            AppEvent::Proc(run, event) if self.running.as_ref().is_some_and(|r| r.run == run) => {
                match event {
                    ProcessEvent::Output(output) => self.screen.feed(&output.data.to_text()),
                    ProcessEvent::Exit(exit) => self.on_exit(&exit),
                }
            }
            AppEvent::Proc(..) => {}
            AppEvent::ProcLost(run, why) if self.running.as_ref().is_some_and(|r| r.run == run) => {
                self.screen.message(format!("[lost: {why}]"), fail_style());
                self.running = None;
            }
            AppEvent::ProcLost(..) => {}
            // It ended as the key was pressed: nothing to say.
            AppEvent::Cancelled(Err(e)) if e.is_process_gone() => {}
            AppEvent::Cancelled(Err(e)) => {
                self.screen.message(format!("[cancel: {e}]"), fail_style())
            }
            AppEvent::Cancelled(Ok(_)) => {}
        }
    }

    fn draw(&self, frame: &mut Frame) {
        let [output_area, status_area, prompt_area] = Layout::vertical([
            Constraint::Min(1),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        let height = usize::from(output_area.height);
        let mut lines: Vec<Line> = self.screen.lines.iter().cloned().collect();
        if !self.screen.current.is_empty() {
            lines.push(Line::from(self.screen.current.clone()));
        }
        let scroll = self.scroll.min(lines.len().saturating_sub(height));
        let end = lines.len() - scroll;
        let start = end.saturating_sub(height);
        // Bottom-aligned, as a terminal's output is.
        let mut visible: Vec<Line> = vec![Line::default(); height - (end - start)];
        visible.extend(lines.drain(start..end));
        frame.render_widget(Paragraph::new(visible), output_area);

        let ready = self.gw.ready();
        let status = match &self.running {
            Some(running) => format!(" running: {} · Ctrl+C interrupts", running.line),
            None => format!(
                " tui-gateway {} pid {} · q quits",
                ready.version,
                self.gw.pid()
            ),
        };
        let status_style = Style::default().add_modifier(Modifier::REVERSED);
        frame.render_widget(
            Paragraph::new(Line::styled(status, status_style)),
            status_area,
        );

        frame.render_widget(
            Paragraph::new(format!("{PROMPT}{}", self.input)),
            prompt_area,
        );
        let x = prompt_area.x + (PROMPT.len() + self.input.chars().count()) as u16;
        frame.set_cursor_position((x.min(prompt_area.right().saturating_sub(1)), prompt_area.y));
    }
}

fn run(terminal: &mut DefaultTerminal, gw: Gateway) -> std::io::Result<Gateway> {
    let (tx, rx) = mpsc::channel();
    {
        let tx = tx.clone();
        thread::spawn(move || {
            while let Ok(event) = crossterm::event::read() {
                if tx.send(AppEvent::Term(event)).is_err() {
                    return;
                }
            }
        });
    }
    let mut app = App {
        gw,
        screen: Screen::default(),
        input: String::new(),
        running: None,
        runs: 0,
        tx,
        quit: false,
        scroll: 0,
        output_size: PtySize::new(80, 22),
        pidfile: std::env::var("TUI_GATEWAY_DEMO_PIDFILE")
            .ok()
            .filter(|p| !p.is_empty()),
        command_pids: Vec::new(),
    };
    let size = terminal.size()?;
    app.set_size(size.width, size.height);
    let ready = app.gw.ready();
    let banner = format!(
        "tui-gateway {} ready (pid {}); commands run on a PTY.",
        ready.version, ready.pid
    );
    app.screen.message(banner, info_style());
    app.screen.message(
        "Type a command and press Enter. Ctrl+C interrupts it; q quits.",
        info_style(),
    );
    app.write_pidfile();

    while !app.quit {
        terminal.draw(|frame| app.draw(frame))?;
        let Ok(event) = rx.recv() else { break };
        app.on_event(event);
        // Take whatever else is waiting before drawing again.
        while let Ok(event) = rx.try_recv() {
            app.on_event(event);
            if app.quit {
                break;
            }
        }
    }
    app.screen.message("[closing the gateway...]", info_style());
    terminal.draw(|frame| app.draw(frame))?;
    Ok(app.gw)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Start the gateway before taking over the terminal, so that a start
    // error prints as usual.
    let gw = Gateway::spawn(GatewayOptions::default())?;
    let mut terminal = ratatui::init();
    let result = run(&mut terminal, gw);
    // Close before restoring the terminal: the screen says what it waits for.
    let closed = result.as_ref().ok().map(Gateway::close);
    ratatui::restore();
    result?;
    match closed {
        Some(Ok(exit)) => println!("{exit}"),
        Some(Err(e)) => eprintln!("closing the gateway: {e}"),
        None => {}
    }
    Ok(())
}
