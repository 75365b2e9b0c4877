//! Integration tests: the real `kvctl` binary, free ports, temp directories.

mod server;
mod support;
