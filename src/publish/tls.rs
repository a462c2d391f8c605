//! TLS of every request leak-sentinel sends — webhooks and Grafana annotations
//! (`publish::notify`) and PromQL range queries (`fleet`): one TLS configuration for all of them
//! (rustls, Mozilla's root certificates built in, plus the certificate authorities of a CA file
//! given with `--ca-file`, `LEAK_SENTINEL_CA_FILE` or the config key `ca_file`), and one plain
//! message for a server certificate that is not trusted.

use crate::exit::usage;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// Largest CA file read, bytes. A whole system bundle (every root Mozilla trusts) is about
/// 220 KiB; the bound keeps `--ca-file /dev/zero` or a runaway file from eating memory.
pub const MAX_CA_FILE_BYTES: u64 = 4 << 20;

/// How a user passes a CA file, for messages.
const HOW: &str = "--ca-file FILE or LEAK_SENTINEL_CA_FILE";

/// Certificate authorities trusted in addition to the built-in roots: the certificates of a CA
/// file, checked to be X.509 when read.
#[derive(Clone)]
pub struct CaBundle {
    /// The file they came from (named in messages).
    pub path: PathBuf,
    certs: Arc<Vec<Certificate<'static>>>,
}

impl std::fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CaBundle({}, {} certificates)",
            self.path.display(),
            self.certs.len()
        )
    }
}

impl CaBundle {
    /// Reads a PEM file of one or more certificates (read-only, at most [`MAX_CA_FILE_BYTES`];
    /// other PEM blocks such as keys are skipped). A missing, unreadable or unparsable file, or
    /// one without a certificate, is a one-line usage error naming it.
    pub fn load(path: &Path) -> Result<CaBundle> {
        let text = crate::files::read_bounded(path, MAX_CA_FILE_BYTES, "CA file")?;
        let bad = |why: String| usage(format!("CA file '{}': {why}", path.display()));
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(text.as_bytes()) {
            match item {
                Ok(PemItem::Certificate(c)) => certs.push(c),
                Ok(_) => {}
                Err(e) => return Err(bad(format!("not valid PEM ({})", one_line(&e)))),
            }
        }
        if certs.is_empty() {
            return Err(bad(
                "holds no certificate (expected PEM blocks '-----BEGIN CERTIFICATE-----')".into(),
            ));
        }
        // Checked now: rustls would otherwise skip a certificate it cannot parse without a
        // word, and the server would then be refused for a reason nobody could see.
        let mut store = rustls::RootCertStore::empty();
        for (i, c) in certs.iter().enumerate() {
            store
                .add(rustls::pki_types::CertificateDer::from(c.der()))
                .map_err(|e| {
                    bad(format!(
                        "certificate {} of {} is not a usable X.509 certificate ({e})",
                        i + 1,
                        certs.len()
                    ))
                })?;
        }
        Ok(CaBundle {
            path: path.to_path_buf(),
            certs: Arc::new(certs),
        })
    }

    /// `path`, when given, read as [`CaBundle::load`] does.
    pub fn load_opt(path: Option<&Path>) -> Result<Option<CaBundle>> {
        path.map(CaBundle::load).transpose()
    }
}

/// The TLS configuration of every agent: Mozilla's roots (built in, the same on every machine),
/// plus the CA file's certificates when one is given — added, not instead, so a run can post
/// to a public chat webhook and to a Grafana behind a private CA alike.
pub fn config(ca: Option<&CaBundle>) -> TlsConfig {
    let roots = match ca {
        None => RootCerts::WebPki,
        Some(b) => webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()))
            .chain(b.certs.iter().cloned())
            .into(),
    };
    TlsConfig::builder().root_certs(roots).build()
}

/// An agent for one kind of request: the shared TLS setup, everything done within `timeout`,
/// no redirects (a redirected POST would arrive as a GET without its body, or go to another
/// host; a scraped endpoint that moves is misconfigured) and an HTTP error status returned as
/// an answer for the caller to report.
pub fn agent(ca: Option<&CaBundle>, timeout: std::time::Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(config(ca))
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// The body of an answer, at most `max` bytes, and whether the answer had more (left unread):
/// a scraped page or a profile never takes more memory than its bound.
pub fn body_bounded(
    resp: &mut ureq::http::Response<ureq::Body>,
    max: u64,
) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::Read;
    let mut body = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(max + 1)
        .read_to_end(&mut body)?;
    let over = body.len() as u64 > max;
    if over {
        body.truncate(max as usize);
    }
    Ok((body, over))
}

/// A server whose certificate was not trusted: what to show instead of the TLS library's error.
#[derive(Debug, thiserror::Error)]
#[error("the certificate of {origin} was not trusted: {why}; {hint}")]
pub struct Untrusted {
    /// `https://host:port` (never credentials, paths or queries: a webhook's path is its secret).
    pub origin: String,
    /// What is wrong with the certificate.
    pub why: String,
    /// What to do about it.
    pub hint: String,
}

/// The certificate error inside `e`, told for `url`; `None` when `e` is something else.
pub fn untrusted(e: &ureq::Error, url: &str, ca: Option<&CaBundle>) -> Option<Untrusted> {
    use rustls::CertificateError as C;
    let tls = match e {
        ureq::Error::Rustls(r) => r,
        // The handshake's failure arrives wrapped in the I/O error of the connection.
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>()?,
        _ => return None,
    };
    let rustls::Error::InvalidCertificate(cert) = tls else {
        return None;
    };
    let add_ca = match ca {
        Some(b) => format!(
            "the CA file '{}' does not hold the authority that signed it; pass that one with {HOW}",
            b.path.display()
        ),
        None => format!("pass the certificate (PEM) of the authority that signed it with {HOW}"),
    };
    let (why, hint) = match cert {
        C::UnknownIssuer | C::BadSignature => (
            "it is signed by an unknown certificate authority".to_string(),
            add_ca,
        ),
        C::NotValidForName => (
            "it was not issued for this host name".to_string(),
            name_hint(),
        ),
        C::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names: Vec<String> = presented.iter().map(|n| san(n)).collect();
            let names = if names.is_empty() {
                String::new()
            } else {
                format!(" (it names {})", names.join(", "))
            };
            (
                format!("it was not issued for '{}'{names}", expected.to_str()),
                name_hint(),
            )
        }
        C::Expired | C::ExpiredContext { .. } => (
            "it has expired".to_string(),
            "the server needs a renewed certificate".to_string(),
        ),
        C::NotValidYet | C::NotValidYetContext { .. } => (
            "it is not valid yet".to_string(),
            "check this machine's clock".to_string(),
        ),
        other => (format!("its check failed ({})", one_line(other)), add_ca),
    };
    Some(Untrusted {
        origin: origin(url),
        why,
        hint,
    })
}

/// What to do about a certificate of another host name.
fn name_hint() -> String {
    format!(
        "connect by a name it was issued for ({HOW} adds trusted authorities; it cannot change the name)"
    )
}

/// A subject alternative name as the TLS library lists it (`DnsName("a.example")`,
/// `IpAddress(10.0.0.1)`) as a user writes it: `'a.example'`, `'10.0.0.1'`.
fn san(listed: &str) -> String {
    let inner = listed
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(listed);
    format!("'{}'", inner.trim_matches('"'))
}

/// `scheme://host[:port]` of `url`: no credentials, path, query or fragment.
fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}

fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string().replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_drops_credentials_path_and_query() {
        assert_eq!(
            origin("https://u:p@hooks.example:8443/T0/B0/secret?x=1"),
            "https://hooks.example:8443"
        );
        assert_eq!(origin("https://grafana"), "https://grafana");
        assert_eq!(origin("https://[::1]:9090/api"), "https://[::1]:9090");
    }

    #[test]
    fn alternative_names_are_shown_as_written() {
        assert_eq!(san("DnsName(\"a.example\")"), "'a.example'");
        assert_eq!(san("IpAddress(10.0.0.1)"), "'10.0.0.1'");
        assert_eq!(san("DirectoryName"), "'DirectoryName'");
    }

    #[test]
    fn ca_files_without_certificates_are_usage_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("ca.pem");
        for (text, says) in [
            ("", "holds no certificate"),
            ("just text\n", "holds no certificate"),
            (
                "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
                "not valid PEM",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "certificate 1 of 1 is not a usable X.509 certificate",
            ),
        ] {
            std::fs::write(&p, text).expect("write");
            let e = CaBundle::load(&p).expect_err(text);
            let msg = e.to_string();
            assert!(
                e.is::<crate::exit::UsageError>() && msg.contains(says) && !msg.contains('\n'),
                "{text:?}: {msg}"
            );
        }
        let e = CaBundle::load(&dir.path().join("missing.pem")).expect_err("missing");
        assert!(e.to_string().contains("cannot read CA file"), "{e}");
    }
}
