//! `tui-gateway attach NAME` (and `--session NAME` when NAME runs): a relay
//! between this process's stdio and a session's socket.
//!
//! It sends the attach request (the cursor from `--frames-received` and
//! `--epoch`, and `--takeover`), reads the answer, and then copies bytes both
//! ways until either side ends, through two bounded buffers: a side that
//! does not read makes the other wait, nothing is dropped. With a cursor it
//! first writes a `gateway.attached` event (not part of the stream); a
//! refusal goes to stderr (`[gateway-attach] ...`) and the exit code is 69.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream as StdStream;
use std::time::{Duration, Instant};

use mio::net::UnixStream;
use mio::{Events, Interest, Poll, Token};
use serde_json::{json, Value};

use super::place::Place;
use crate::config::{AttachConfig, Cursor};
use crate::engine::lifecycle::exit_code;
use crate::shell::stderr;
use crate::shell::stdio::{self, End, Kind};

const STDIN: Token = Token(0);
const STDOUT: Token = Token(1);
const SOCKET: Token = Token(2);
/// Bytes held in each direction.
const BUFFER: usize = 64 * 1024;
/// How long a session that holds its lock may take to listen, and to answer.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// Attaches to session `place` and relays until either side ends; returns
/// the exit code.
pub(crate) fn run(place: &Place, attach: &AttachConfig) -> i32 {
    let refuse = |why: String| {
        stderr::line(&format!("[gateway-attach] {why}"));
        exit_code::UNAVAILABLE
    };
    let stream = match connect(place) {
        Ok(stream) => stream,
        Err(why) => return refuse(why),
    };
    let (result, rest) = match handshake(&stream, place, attach) {
        Ok(answer) => answer,
        Err(why) => return refuse(why),
    };
    let mut greeting = Vec::new();
    if attach.frames_received.is_some() {
        let event = json!({"jsonrpc": "2.0", "method": "event", "params": {"type": "gateway.attached", "payload": result}});
        greeting = serde_json::to_vec(&event).expect("a JSON value serializes");
        greeting.push(b'\n');
    }
    greeting.extend_from_slice(&rest);
    stdio::save_all();
    let code = match relay(stream, greeting) {
        Ok(()) => exit_code::ORDERLY,
        Err(e) => {
            stderr::line(&format!("[gateway-attach] the relay failed: {e}"));
            exit_code::IO_ERROR
        }
    };
    stdio::restore_all();
    code
}

/// Connects to the session's socket. A session that holds its lock but
/// does not listen yet is starting: it is given [`CONNECT_WAIT`].
fn connect(place: &Place) -> Result<StdStream, String> {
    let deadline = Instant::now() + CONNECT_WAIT;
    let mut pause = Duration::from_millis(1);
    loop {
        match StdStream::connect(&place.socket) {
            Ok(stream) => return Ok(stream),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                // Nobody holds the lock: no session of this name runs (the
                // lock was free, so the files left are a dead one's).
                match place.try_own() {
                    Ok(Some(_lock)) => {
                        place.remove();
                        return Err(format!("no session {} runs", place.name));
                    }
                    Ok(None) if Instant::now() < deadline => {
                        // Starting: the lock is held, the socket comes next.
                        // A short pause between tries (not a poll on a
                        // deadline: there is no fd to wait on yet).
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(50));
                    }
                    Ok(None) => {
                        return Err(format!(
                            "session {} holds its lock but did not listen within {}s",
                            place.name,
                            CONNECT_WAIT.as_secs()
                        ))
                    }
                    Err(e) => return Err(format!("cannot check session {}: {e}", place.name)),
                }
            }
            Err(e) => return Err(format!("cannot connect to session {}: {e}", place.name)),
        }
    }
}

/// Sends the attach request and reads the answer: its result, and the
/// stream's first bytes if they came in the same read.
fn handshake(
    stream: &StdStream,
    place: &Place,
    attach: &AttachConfig,
) -> Result<(Value, Vec<u8>), String> {
    let mut params = json!({"session": place.name, "takeover": attach.takeover});
    match attach.frames_received {
        Some(Cursor::At(n)) => params["frames_received"] = json!(n),
        Some(Cursor::Latest) => params["frames_received"] = json!("latest"),
        None => {}
    }
    if let Some(epoch) = &attach.epoch {
        params["epoch"] = json!(epoch);
    }
    let request =
        json!({"jsonrpc": "2.0", "id": "attach", "method": "gateway.attach", "params": params});
    let mut line = serde_json::to_vec(&request).expect("a JSON value serializes");
    line.push(b'\n');
    let io_error = |e: io::Error| format!("session {}: {e}", place.name);
    stream
        .set_read_timeout(Some(CONNECT_WAIT))
        .map_err(io_error)?;
    (&*stream).write_all(&line).map_err(io_error)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = memchr::memchr(b'\n', &buf) {
            break end;
        }
        match (&*stream).read(&mut chunk) {
            Ok(0) => {
                return Err(format!(
                    "session {} closed the connection before answering",
                    place.name
                ))
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e)),
        }
    };
    let rest = buf.split_off(end + 1);
    let answer: Value = serde_json::from_slice(&buf[..end]).map_err(|e| {
        format!(
            "session {} answered with something else than JSON: {e}",
            place.name
        )
    })?;
    if let Some(error) = answer.get("error") {
        let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message = error.get("message").and_then(Value::as_str).unwrap_or("");
        return Err(format!(
            "session {} refused the attach ({code}): {message}",
            place.name
        ));
    }
    let result = answer.get("result").cloned().unwrap_or(Value::Null);
    Ok((result, rest))
}

/// Copies stdin to the socket and the socket to stdout (after `greeting`)
/// until the session closes the connection or stdout's reader goes.
fn relay(stream: StdStream, greeting: Vec<u8>) -> io::Result<()> {
    stream.set_read_timeout(None)?;
    stream.set_nonblocking(true)?;
    let mut socket = UnixStream::from_std(stream);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut socket, SOCKET, Interest::READABLE | Interest::WRITABLE)?;
    let mut stdin = End::open(libc::STDIN_FILENO, &poll, STDIN, Interest::READABLE);
    let mut stdout = End::open(libc::STDOUT_FILENO, &poll, STDOUT, Interest::WRITABLE);
    let (mut socket_readable, mut socket_writable) = (true, true);
    let mut socket_eof = false;
    let mut up: Vec<u8> = Vec::with_capacity(BUFFER);
    let mut down: Vec<u8> = greeting;
    let mut up_shut = false;
    let mut events = Events::with_capacity(16);
    let mut buf = vec![0u8; BUFFER];
    loop {
        let mut progress = false;
        // stdin → up
        if stdin.ready && !stdin.done && up.len() < BUFFER {
            match stdio::read(stdin.fd, &mut buf[..BUFFER - up.len()]) {
                Ok(0) => stdin.done = true,
                Ok(n) => {
                    up.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => stdin.ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => stdin.done = true,
            }
        }
        // up → socket
        if socket_writable && !up.is_empty() {
            match socket.write(&up) {
                Ok(n) => {
                    up.drain(..n);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket_writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The session closed the connection: what it wrote is
                // still read below.
                Err(_) => up.clear(),
            }
        }
        if stdin.done && up.is_empty() && !up_shut {
            // The client is done: the session detaches it when it sees EOF.
            let _ = socket.shutdown(std::net::Shutdown::Write);
            up_shut = true;
        }
        // socket → down
        if socket_readable && !socket_eof && down.len() < BUFFER {
            match socket.read(&mut buf[..BUFFER - down.len()]) {
                Ok(0) => socket_eof = true,
                Ok(n) => {
                    down.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket_readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => socket_eof = true,
            }
        }
        // down → stdout
        if stdout.ready && !stdout.done && !down.is_empty() {
            match stdio::writev(stdout.fd, &[io::IoSlice::new(&down)]) {
                Ok(n) => {
                    down.drain(..n);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    stdout.ready = stdout.kind == Kind::AlwaysReady;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Nobody reads: closing the socket detaches the client.
                Err(_) => stdout.done = true,
            }
        }
        if stdout.done || (socket_eof && down.is_empty()) {
            return Ok(());
        }
        if progress {
            continue;
        }
        poll.poll(&mut events, None).or_else(|e| {
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        for event in events.iter() {
            match event.token() {
                STDIN => stdin.ready = true,
                STDOUT => {
                    stdout.ready = true;
                    if event.is_write_closed() || event.is_error() {
                        stdout.done = true;
                    }
                }
                _ => {
                    socket_readable |= event.is_readable() || event.is_read_closed();
                    socket_writable |= event.is_writable() || event.is_write_closed();
                }
            }
        }
    }
}
