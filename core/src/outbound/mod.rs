//! The guard for URLs the product calls out to that users give it: custom backends to
//! validate and adopt, remote workers to register and call.
//!
//! The rules, in one place:
//! * only `http` and `https`, with a host, no user name or password, no query or fragment
//!   ([`validate_outbound_url`]);
//! * the host is resolved once and every address it resolves to must be allowed
//!   ([`OutboundGuard::check`]): public addresses always are; link-local and cloud metadata
//!   addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254, 100.100.100.200) never are;
//!   loopback, private networks, CGNAT space, unspecified, multicast, broadcast and reserved
//!   addresses only when `outbound_allow` names them ([`AllowList`]). IPv4 addresses inside
//!   IPv6 ones (`::ffff:a.b.c.d`, `64:ff9b::a.b.c.d`) are judged as IPv4;
//! * the connection goes to the checked addresses and nowhere else (pinned in the client);
//! * redirects are never followed, not even to the same origin: a 3xx answer is an error
//!   that asks for the final URL. Following one would mean a second destination the user did
//!   not give, checked or not, and the contracts the product speaks never redirect;
//! * connect and total time are bounded, and answer bodies are read in chunks up to a limit.

mod address;
mod answer;
mod guard;

use reqwest::Url;

use crate::error::{CoreError, CoreResult};

pub use address::{AddressClass, AllowList, Cidr, ProcessMode, effective_ip};
pub use answer::{EXCERPT_CHARS, HttpAnswer, OutboundError, excerpt, root_cause};
pub use guard::{CheckedUrl, OutboundGuard, OutboundLimits, Refusal};

/// Longest outbound URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Parses `text` as an outbound base URL: `http` or `https`, a host, no user name or password,
/// no query or fragment. `field` names the input in the error. Syntax only: addresses are
/// checked by [`OutboundGuard::check`].
pub fn validate_outbound_url(field: &str, text: &str) -> CoreResult<Url> {
    parse_outbound_url(text).map_err(|why| CoreError::bad_input(field, why))
}

/// [`validate_outbound_url`] with the reason as plain text.
fn parse_outbound_url(text: &str) -> Result<Url, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must be an http:// or https:// URL".into());
    }
    if text.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters"));
    }
    let url = Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme {:?} is not allowed; use http or https",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not contain credentials; the orchestrator sends any credentials itself".into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(url)
}

/// `base` joined with an absolute API path, keeping any path prefix of `base`
/// (`http://h/prefix` + `/api/process` → `http://h/prefix/api/process`).
pub fn endpoint(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_http_and_https() {
        assert!(validate_outbound_url("u", "http://127.0.0.1:8080").is_ok());
        assert!(validate_outbound_url("u", "https://worker.example.com/base/").is_ok());
    }

    #[test]
    fn refuses_other_schemes_credentials_and_junk() {
        for (url, needle) in [
            ("ftp://h", "scheme"),
            ("file:///etc/passwd", "scheme"),
            ("http://user:pw@h", "credentials"),
            ("http://user@h", "credentials"),
            ("not a url", "not a URL"),
            ("", "http"),
            ("http://h/?a=1", "query"),
        ] {
            let err = validate_outbound_url("input.url", url).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("input.url"), "{text}");
            assert!(text.contains(needle), "{url}: {text}");
        }
    }

    #[test]
    fn endpoints_keep_the_base_path() {
        assert_eq!(endpoint("http://h/p/", "/api/x"), "http://h/p/api/x");
        assert_eq!(endpoint("http://h", "/health"), "http://h/health");
    }
}
