//! `kvctl snapshot save`: a running server's state, downloaded into a file
//! that appears only once it is complete and on disk.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::CliError;
use crate::cli::SnapshotSaveArgs;
use crate::output::{bytes_with_human, emit_line};

/// `kvctl snapshot save FILE`.
pub fn save(args: SnapshotSaveArgs) -> Result<(), CliError> {
    let client = super::connect_to(&args.server, &args.connect)?;
    let partial = partial_path(&args.file);
    let file =
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut lines = 0u64;
    let downloaded = super::runtime()?.block_on(client.download("/admin/snapshot", |chunk| {
        lines += memchr::memchr_iter(b'\n', chunk).count() as u64;
        out.write_all(chunk)
    }));
    let finished = downloaded.map_err(CliError::from).and_then(|bytes| {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&partial, &args.file).with_context(|| {
            format!(
                "cannot rename {} to {}",
                partial.display(),
                args.file.display()
            )
        })?;
        let dir = args.file.parent().filter(|d| !d.as_os_str().is_empty());
        crate::wal::sync_dir(dir.unwrap_or(Path::new(".")))?;
        Ok(bytes)
    });
    match finished {
        Ok(bytes) => {
            emit_line(&format!(
                "saved a snapshot of {} to {}: {lines} keys, {}",
                client.server(),
                args.file.display(),
                bytes_with_human(bytes)
            ))?;
            Ok(())
        }
        Err(err) => {
            let _ = fs::remove_file(&partial);
            Err(err)
        }
    }
}

/// `FILE.partial`, beside FILE so the final rename stays on one filesystem.
fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    file.with_file_name(name)
}
