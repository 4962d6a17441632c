//! Memory exhaustion through the same exit path as a panic.
//!
//! The gateway's memory is bounded by its limits (`docs/protocol.md`,
//! "Bounded, in numbers"), so running out means the machine or an
//! `RLIMIT_AS`/cgroup cap is tighter than those limits. Rust's default is
//! to print "memory allocation failed" and `abort()`: no reason line, no
//! crash-log entry, children left running. [`GatewayAlloc`] wraps the
//! system allocator; when it returns null, [`exhausted`] records the reason
//! on stderr and in the crash log, SIGKILLs every child group, restores the
//! stdio flags and exits 70, allocating nothing on the way.
//!
//! The one module outside `sys/` with `unsafe` code: `GlobalAlloc` is an
//! unsafe trait, and its methods are unsafe by definition. They forward to
//! `System` and nothing else.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;

use super::crashlog::{self, StackText};
use super::sys::process;
use super::{child, stderr, stdio};
use crate::engine::lifecycle::exit_code;

/// The system allocator, with the gateway's exit path on failure. The
/// binary installs it with `#[global_allocator]`.
#[derive(Debug, Default, Clone, Copy)]
pub struct GatewayAlloc;

// SAFETY: every method forwards to `System` with the same arguments and
// returns its result; the failure path never returns.
unsafe impl GlobalAlloc for GatewayAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if ptr.is_null() {
            exhausted(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if ptr.is_null() {
            exhausted(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let ptr = System.realloc(ptr, layout, new_size);
        if ptr.is_null() {
            exhausted(new_size);
        }
        ptr
    }
}

/// The out-of-memory exit: reason line, crash-log entry, children killed,
/// stdio restored, exit 70. Allocates nothing.
pub fn exhausted(size: usize) -> ! {
    let mut line = StackText::<160>::new();
    let _ = writeln!(
        line,
        "[gateway-exit] out of memory: an allocation of {size} bytes failed"
    );
    stderr::write_bytes(line.bytes());
    crashlog::entry_without_allocating(
        "exit",
        format_args!("reason=out of memory: an allocation of {size} bytes failed"),
    );
    child::kill_all_groups_now();
    stdio::restore_all();
    process::exit_now(exit_code::INTERNAL)
}
