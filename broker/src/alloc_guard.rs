//! A global allocator guard against hostile length prefixes.
//!
//! The `kafka-protocol` decoder reserves `Vec::with_capacity(n)` from array
//! lengths read off the wire, so a 60-byte frame can ask for 95 GB and the
//! process aborts (allocation failure is not a catchable panic). Huge requests
//! are served here from `mmap(MAP_NORESERVE)`: address space only, no memory is
//! touched, the decode then fails on the short buffer and the mapping goes back.
//! Everything below the threshold goes to the system allocator unchanged.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are lazily mapped.
const BIG: usize = 1 << 30;

/// Install with `#[global_allocator] static A: GuardedAlloc = GuardedAlloc;`.
pub struct GuardedAlloc;

fn big(l: &Layout) -> bool {
    l.size() >= BIG && l.align() <= 4096
}

unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if big(&l) {
            // SAFETY: anonymous private mapping; no file, no fixed address.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    l.size(),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                std::ptr::null_mut()
            } else {
                p as *mut u8
            }
        } else {
            // SAFETY: forwarded with the caller's layout.
            unsafe { System.alloc(l) }
        }
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if big(&l) {
            // Fresh anonymous mappings are zero-filled.
            unsafe { self.alloc(l) }
        } else {
            // SAFETY: forwarded with the caller's layout.
            unsafe { System.alloc_zeroed(l) }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if big(&l) {
            // SAFETY: p came from our mmap with this exact size.
            unsafe {
                libc::munmap(p as *mut libc::c_void, l.size());
            }
        } else {
            // SAFETY: p came from System with this layout.
            unsafe { System.dealloc(p, l) }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        if l.size() < BIG && new_size < BIG {
            // SAFETY: both sides are System allocations.
            return unsafe { System.realloc(p, l, new_size) };
        }
        // SAFETY: the caller guarantees new_size is valid for l.align().
        let nl = unsafe { Layout::from_size_align_unchecked(new_size, l.align()) };
        let np = unsafe { self.alloc(nl) };
        if !np.is_null() {
            // SAFETY: distinct allocations, both at least min(old, new) bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(p, np, l.size().min(new_size));
                self.dealloc(p, l);
            }
        }
        np
    }
}
