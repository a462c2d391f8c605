//! `completions SHELL` and `man [-o DIR]`: shell completion scripts (clap_complete) and man
//! pages (clap_mangen), both generated from the clap definitions in `cli.rs`, so they never
//! drift from the real flags.

use super::write_user_file;
use crate::exit::{Exit, usage};
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// The binary's name as users type it.
const BIN: &str = "leak-sentinel";

/// Prints the completion script of `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<Exit> {
    let mut cmd = crate::cli::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut out);
    std::io::stdout()
        .write_all(&out)
        .context("writing the completion script")?;
    Ok(Exit::Passed)
}

/// The roff of one command's page.
fn page(cmd: clap::Command) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("rendering the man page")?;
    Ok(out)
}

/// Every page: `leak-sentinel` itself, then `leak-sentinel-SUB` for each visible subcommand
/// (and `leak-sentinel-SUB-SUBSUB` for nested ones such as `schedule create`), as
/// (file name, roff).
fn pages() -> Result<Vec<(String, Vec<u8>)>> {
    let root = crate::cli::Cli::command();
    let mut out = vec![(format!("{BIN}.1"), page(root.clone())?)];
    let mut stack: Vec<(String, clap::Command)> = root
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| (format!("{BIN}-{}", c.get_name()), c.clone()))
        .collect();
    stack.reverse();
    while let Some((name, sub)) = stack.pop() {
        let children: Vec<(String, clap::Command)> = sub
            .get_subcommands()
            .filter(|c| !c.is_hide_set() && c.get_name() != "help")
            .map(|c| (format!("{name}-{}", c.get_name()), c.clone()))
            .collect();
        // The page's title is the full command (`leak-sentinel-schedule-create`), as git's are.
        let typed = format!("{BIN}{}", name[BIN.len()..].replace('-', " "));
        let titled = sub.name(name.clone()).bin_name(typed);
        out.push((format!("{name}.1"), page(titled)?));
        stack.extend(children.into_iter().rev());
    }
    Ok(out)
}

/// Prints the main page, or writes every page into `dir`.
pub fn man(dir: Option<&Path>) -> Result<Exit> {
    let Some(dir) = dir else {
        std::io::stdout()
            .write_all(&page(crate::cli::Cli::command())?)
            .context("writing the man page")?;
        return Ok(Exit::Passed);
    };
    if !dir.is_dir() {
        return Err(usage(format!(
            "-o: '{}' is not an existing directory",
            dir.display()
        )));
    }
    let pages = pages()?;
    for (name, roff) in &pages {
        write_user_file(&dir.join(name), roff)?;
    }
    println!("wrote {} man pages into {}", pages.len(), dir.display());
    Ok(Exit::Passed)
}
