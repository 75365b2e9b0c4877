//! One module per group of subcommands, and the errors that pick exit codes.

pub mod bench;
pub mod client;
pub mod generate;
pub mod serve;
pub mod snapshot;
pub mod wal;

use crate::api::RequestError;
use crate::client::{ClientError, ClientOptions};

/// A failed command, classified by the exit status it gets.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The key is absent (exit 1).
    #[error("key not found: {0:?}")]
    KeyNotFound(String),
    /// Bad arguments or input (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached, or its answer made no sense (exit 3 or 4).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A request was refused without a server (offline), as a server would refuse it (exit 4).
    #[error("rejected: {0}")]
    Rejected(#[from] RequestError),
    /// Anything local: data directory, log, I/O (exit 5).
    #[error(transparent)]
    Local(#[from] anyhow::Error),
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::KeyNotFound(_) => 1,
            CliError::Usage(_)
            | CliError::Client(ClientError::BadUrl { .. } | ClientError::BadCaCert { .. }) => 2,
            CliError::Client(ClientError::Unreachable { .. }) => 3,
            CliError::Client(ClientError::Local(_)) => 5,
            CliError::Client(_) | CliError::Rejected(_) => 4,
            CliError::Local(_) => 5,
        }
    }

    /// The message with every cause, on one line.
    pub fn to_string_chain(&self) -> String {
        match self {
            CliError::Local(err) => format!("{err:#}"),
            other => other.to_string(),
        }
    }

    /// Whether the error is only stdout's reader having gone away.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            CliError::Local(err) => crate::output::is_broken_pipe(err),
            _ => false,
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> Self {
        CliError::Local(err.into())
    }
}

impl From<crate::wal::WalError> for CliError {
    fn from(err: crate::wal::WalError) -> Self {
        CliError::Local(err.into())
    }
}

/// The token and trusted CAs that `--token-file`, `--cacert` and the
/// environment give.
fn client_options(connect: &crate::cli::ConnectArgs) -> Result<ClientOptions, CliError> {
    let token = crate::server::AuthToken::resolve(connect.token_file.as_deref())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(ClientOptions {
        token,
        cacert: connect.cacert.clone(),
    })
}

/// A client of the server at `url`, authenticating as `connect` says.
fn connect_to(
    url: &str,
    connect: &crate::cli::ConnectArgs,
) -> Result<crate::client::Client, CliError> {
    Ok(crate::client::Client::with_options(
        url,
        &client_options(connect)?,
    )?)
}

/// A current-thread runtime for commands that talk to a server.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::Local(anyhow::Error::new(e).context("cannot start the async runtime"))
        })
}
