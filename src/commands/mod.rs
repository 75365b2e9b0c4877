//! One module per subcommand; each exposes `run`.

pub mod serve;
