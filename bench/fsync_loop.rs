//! The disk's own limit for one writer: append a WAL-sized line and
//! fdatasync it, over and over, with nothing else around it. `compare.sh`
//! holds one-connection durable PUTs against this rate.
//!
//! Usage: fsync_loop DIR [SECONDS] [LINE_BYTES]

use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: fsync_loop DIR [SECONDS] [LINE_BYTES]");
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let line_bytes: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(160);
    let path = std::path::Path::new(&dir).join("fsync-loop.log");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open");
    let mut line = vec![b'x'; line_bytes];
    *line.last_mut().unwrap() = b'\n';
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut writes = 0u64;
    while Instant::now() < deadline {
        file.write_all(&line).expect("write");
        file.sync_data().expect("fdatasync");
        writes += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    println!(
        "{{\"writes\":{writes},\"seconds\":{elapsed:.3},\"writes_per_sec\":{:.1}}}",
        writes as f64 / elapsed
    );
}
