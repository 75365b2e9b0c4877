//! The committed completions and man pages match what the CLI generates.
//! Regenerate them with: KVCTL_REGENERATE=1 cargo test --test integration generated

use std::path::{Path, PathBuf};

use clap_complete::Shell;
use kvctl::commands::generate::{completion, completion_file_name, man_pages};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check(path: &Path, expected: &[u8], stale: &mut Vec<String>) {
    if std::env::var_os("KVCTL_REGENERATE").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, expected).unwrap();
        return;
    }
    if std::fs::read(path).ok().as_deref() != Some(expected) {
        stale.push(path.display().to_string());
    }
}

#[test]
fn generated_completions_and_man_pages_are_up_to_date() {
    let mut stale = Vec::new();
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ] {
        let path = repo().join("completions").join(completion_file_name(shell));
        check(&path, &completion(shell), &mut stale);
    }
    let pages = man_pages();
    for (name, page) in &pages {
        check(&repo().join("man").join(name), page, &mut stale);
    }
    let committed: Vec<String> = std::fs::read_dir(repo().join("man"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for name in committed {
        if !pages.iter().any(|(page, _)| *page == name) {
            stale.push(format!("man/{name} (no such page any more)"));
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {stale:?}\nregenerate with: KVCTL_REGENERATE=1 cargo test --test integration generated"
    );
}

#[test]
fn the_binary_prints_the_same_completions_and_pages() {
    for (shell, name) in [
        ("bash", Shell::Bash),
        ("zsh", Shell::Zsh),
        ("fish", Shell::Fish),
        ("elvish", Shell::Elvish),
        ("powershell", Shell::PowerShell),
    ] {
        let out = crate::support::kvctl(&["completions", shell], &[], None);
        assert!(out.status.success());
        assert_eq!(out.stdout, completion(name), "{shell}");
    }
    let out = crate::support::kvctl(&["man"], &[], None);
    assert_eq!(out.stdout, man_pages()[0].1);
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::kvctl(
        &["man", "--out-dir", dir.path().to_str().unwrap()],
        &[],
        None,
    );
    assert!(out.status.success());
    assert!(dir.path().join("kvctl-wal-compact.1").exists());
    assert!(dir.path().join("kvctl-put.1").exists());
}
