//! `annotate` and `grafana templates|dashboard`: a Grafana annotation now, and the Grafana files.

use super::write_user_file;
use crate::cli::GrafanaCmd;
use crate::clock::now_unix;
use crate::exit::Exit;
use crate::render;
use anyhow::Result;
use std::path::Path;

/// Runs `annotate TEXT`: one Grafana annotation now.
pub fn annotate(
    text: &str,
    tags: &str,
    grafana_url: &str,
    grafana_token_file: Option<&Path>,
    ca_file: Option<&Path>,
) -> Result<Exit> {
    let token = crate::publish::notify::grafana_token(grafana_token_file)?;
    let ca = crate::publish::tls::CaBundle::load_opt(ca_file)?;
    let tags: Vec<String> = tags
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    // The server is this command's input (--grafana-url, its token, --ca-file): one that
    // cannot be reached or refuses the annotation is a usage error, as for `scan --url`.
    let v = crate::publish::notify::annotate(
        grafana_url,
        token.as_deref(),
        text,
        &tags,
        now_unix(),
        ca.as_ref(),
    )
    .map_err(|e| crate::exit::usage(crate::exit::one_line(&e)))?;
    println!("annotation added: {v}");
    Ok(Exit::Passed)
}

/// Runs `grafana templates|dashboard [-o FILE]`.
pub fn grafana(g: GrafanaCmd) -> Result<Exit> {
    let (doc, out) = match g {
        GrafanaCmd::Templates { output } => (render::grafana::templates(), output),
        GrafanaCmd::Dashboard {
            output,
            pushed: false,
        } => (render::grafana::dashboard(), output),
        GrafanaCmd::Dashboard {
            output,
            pushed: true,
        } => (render::grafana::pushed_dashboard(), output),
    };
    let text = serde_json::to_string_pretty(&doc)?;
    match out {
        Some(p) => {
            write_user_file(&p, text.as_bytes())?;
            println!("wrote {}", p.display());
        }
        None => println!("{text}"),
    }
    Ok(Exit::Passed)
}
