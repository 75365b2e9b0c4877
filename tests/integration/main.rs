//! Integration tests: the real `kvctl` binary, free ports, temp directories.

mod bench;
mod cli;
mod generated;
mod server;
mod support;
mod wal;
