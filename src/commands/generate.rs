//! `kvctl completions` and `kvctl man`: generated from the clap definitions,
//! so help, man pages and completions never disagree.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use super::CliError;
use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::output::emit;

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kvctl", &mut out);
    out
}

/// The file name a shell's completion script is installed under.
pub fn completion_file_name(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "kvctl.bash",
        Shell::Zsh => "_kvctl",
        Shell::Fish => "kvctl.fish",
        Shell::Elvish => "kvctl.elv",
        Shell::PowerShell => "_kvctl.ps1",
        _ => "kvctl.completion",
    }
}

/// Every man page: `kvctl.1`, then one per subcommand (`kvctl-wal-compact.1`).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut root = Cli::command();
    root.build();
    let mut pages = Vec::new();
    collect_pages(&root, "kvctl", &mut pages);
    pages
}

fn collect_pages(cmd: &clap::Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) {
    let mut out = Vec::new();
    let page_cmd = cmd.clone().name(name.to_owned());
    clap_mangen::Man::new(page_cmd)
        .render(&mut out)
        .expect("rendering into a Vec cannot fail");
    pages.push((format!("{name}.1"), out));
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        collect_pages(sub, &format!("{name}-{}", sub.get_name()), pages);
    }
}

/// `kvctl completions`.
pub fn completions(args: CompletionsArgs) -> Result<(), CliError> {
    let script = completion(args.shell);
    emit(&String::from_utf8_lossy(&script))?;
    Ok(())
}

/// `kvctl man`.
pub fn man(args: ManArgs) -> Result<(), CliError> {
    let pages = man_pages();
    match args.out_dir {
        None => emit(&String::from_utf8_lossy(&pages[0].1))?,
        Some(dir) => write_pages(&dir, &pages)?,
    }
    Ok(())
}

fn write_pages(dir: &Path, pages: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, page) in pages {
        let path = dir.join(name);
        std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
