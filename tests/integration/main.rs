//! Integration tests: the real `kvctl` binary on free ports with temp
//! directories, and the router driven in process.

mod bench;
mod cli;
mod compaction;
mod crash;
mod fuzz_router;
mod fuzz_wal;
mod generated;
mod metrics;
mod model;
mod network;
mod router;
mod server;
mod support;
mod wal;
