//! The process's memory allocator, jemalloc, and giving memory back.
//!
//! A stored value is allocated on the async worker that parses its request
//! and freed, when it is replaced or expires, on the writer or sweeper
//! thread. glibc's malloc serves that pattern through locked per-thread
//! arenas and consolidation passes (a tenth of the server's CPU under
//! batches of sets); jemalloc's thread caches and size-class slabs take it
//! in stride, and its small allocations carry no header, so a 100-byte
//! value still costs 112 bytes. The measurements against glibc and
//! mimalloc are in `bench/results/rounds-1-to-4.md`.

#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Returns the memory freed so far to the operating system now, rather than
/// when the allocator gets round to it, so that a large expiry shows up in
/// the resident size at once. (The spec's suite watches the server's
/// resident size fall after 200 000 keys expire; `bench/compare.sh` after a
/// million.)
pub fn give_memory_back() {
    #[cfg(unix)]
    // SAFETY: "arena.<MALLCTL_ARENAS_ALL>.purge" (4096 is
    // MALLCTL_ARENAS_ALL) reads and writes nothing, hence the null pointers
    // and zero length; it only releases pages that hold no allocation.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
    // glibc's heap too, for whatever C code allocates through it.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
