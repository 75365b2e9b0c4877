//! The `kvctl` binary: parse arguments, set up logging, dispatch, and be the
//! only place that prints a fatal error and picks the exit code.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use kvctl::cli::{Cli, Command, SnapshotCommand, WalCommand};
use kvctl::commands::{self, CliError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    ignore_file_size_signal();
    let result = match cli.command {
        Command::Serve(args) => {
            if let Err(err) = init_logging(args.log_level.as_deref(), "info") {
                report(&format!(
                    "invalid --log-level: {err} (see kvctl serve --help)"
                ));
                return ExitCode::from(2);
            }
            commands::serve::run(args).map_err(CliError::Local)
        }
        command => {
            // A bad RUST_LOG must not stop a client command: fall back to warn.
            let _ = init_logging(None, "warn");
            run_tool(command)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `kvctl ls | head`: the reader having had enough is not a failure.
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            report(&err.to_string_chain());
            ExitCode::from(err.exit_code())
        }
    }
}

fn run_tool(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve(_) => unreachable!("handled by main"),
        Command::Get(args) => commands::client::get(args),
        Command::Put(args) => commands::client::put(args),
        Command::Rm(args) => commands::client::rm(args),
        Command::Ls(args) => commands::client::ls(args),
        Command::Stats(args) => commands::client::stats(args),
        Command::Batch(args) => commands::client::batch(args),
        Command::Wal(WalCommand::Inspect(args)) => commands::wal::inspect(args),
        Command::Wal(WalCommand::Compact(args)) => commands::wal::compact(args),
        Command::Wal(WalCommand::Repair(args)) => commands::wal::repair(args),
        Command::Snapshot(SnapshotCommand::Save(args)) => commands::snapshot::save(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Completions(args) => commands::generate::completions(args),
        Command::Man(args) => commands::generate::man(args),
    }
}

/// Help and version go to stdout with status 0; a usage error is one line
/// on stderr with status 2.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::from(if err.use_stderr() { 2 } else { 0 })
        }
        _ => {
            let text = err.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            report(&format!("{first} (see kvctl --help)"));
            ExitCode::from(2)
        }
    }
}

/// Prints a fatal error on one line; a stderr that cannot be written to is
/// no reason to panic.
fn report(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "kvctl: {message}");
}

/// Sets up logging to stderr. An explicit filter that does not parse is an
/// error; a bad RUST_LOG falls back to `default`.
fn init_logging(flag: Option<&str>, default: &str) -> Result<(), String> {
    let filter = match flag {
        Some(level) => {
            check_bare_directives(level)?;
            EnvFilter::try_new(level).map_err(|e| e.to_string())?
        }
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Reporting a failed log write goes to stderr too and would panic
        // when stderr itself is the problem (a full disk): drop the line.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

/// Refuses a bare word that is not a level. tracing reads one as a target
/// to log everything from, so a typo such as `debgu` would quietly turn
/// logging off instead of failing; targets are named as `target=level`.
fn check_bare_directives(filter: &str) -> Result<(), String> {
    for directive in filter.split(',').map(str::trim) {
        if !directive.is_empty()
            && !directive.contains('=')
            && directive
                .parse::<tracing_subscriber::filter::LevelFilter>()
                .is_err()
        {
            return Err(format!(
                "{directive:?} is not a level (error, warn, info, debug, trace, off); \
                 name a target as target=level"
            ));
        }
    }
    Ok(())
}

/// Writing past RLIMIT_FSIZE must fail the write (answered 5xx), not kill
/// the process with SIGXFSZ.
fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
