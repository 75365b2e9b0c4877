//! Integration tests: the real `kvctl` binary on free ports with temp
//! directories, and the router driven in process.

mod bench;
mod cli;
mod crash;
mod fuzz_router;
mod fuzz_wal;
mod generated;
mod model;
mod router;
mod server;
mod support;
mod wal;
