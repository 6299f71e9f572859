//! Text for logs, errors and summaries: a server's words made safe to show, a URL without its
//! credentials, durations as people read them; and a base URL checked once.

use std::time::Duration;

use reqwest::Url;

/// Text from a server made safe to show: one line, at most `max_chars` characters, and never
/// `secret` (the API key), should a proxy echo it. An empty `secret` hides nothing.
pub fn clean(text: &str, max_chars: usize, secret: &str) -> String {
    let redacted = if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "[redacted]")
    };
    let one_line: String = redacted
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    let cut = match trimmed.char_indices().nth(max_chars) {
        Some((at, _)) => &trimmed[..at],
        None => trimmed,
    };
    if cut.len() < trimmed.len() {
        format!("{cut}…")
    } else {
        cut.to_owned()
    }
}

/// Longest code of a server's refusal passed on.
pub const MAX_CODE_CHARS: usize = 64;
/// Longest message of a server's refusal passed on; it ends up in API answers and logs.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// What a server said when it refused a call, as it may be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub message: String,
}

impl Refusal {
    /// `code` and `message` [`clean`]ed (never `secret`), at most [`MAX_CODE_CHARS`] and
    /// [`MAX_MESSAGE_CHARS`] characters; "unknown" and "no message" when missing or empty.
    pub fn shown(code: Option<&str>, message: Option<&str>, secret: &str) -> Self {
        let shown = |text: Option<&str>, max_chars, missing: &str| {
            text.map(|t| clean(t, max_chars, secret))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| missing.to_owned())
        };
        Self {
            code: shown(code, MAX_CODE_CHARS, "unknown"),
            message: shown(message, MAX_MESSAGE_CHARS, "no message"),
        }
    }
}

/// A URL as it may be shown in a log line, an error or a summary: user name and password
/// dropped, since `http://user:pass@host` carries a credential. Text that does not parse as
/// a URL loses everything up to its last `@` before the path.
pub fn shown_url(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(mut url) if url.has_authority() => {
            // Both fail only for URLs without a host, which `has_authority` excluded.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.into()
        }
        _ => {
            let (scheme, rest) = raw.split_once("://").unwrap_or(("", raw));
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let host_at = rest[..end].rfind('@').map_or(0, |at| at + 1);
            let shown = &rest[host_at..];
            if scheme.is_empty() {
                shown.to_owned()
            } else {
                format!("{scheme}://{shown}")
            }
        }
    }
}

/// An API's base URL as a client will use it: http(s), with a host, no query or fragment (a
/// path prefix is kept). The error says why, showing the URL without credentials.
pub fn parse_base_url(raw: &str) -> Result<Url, String> {
    let invalid = |why: &str| format!("base URL '{}' {why}", shown_url(raw));
    let url = Url::parse(raw.trim()).map_err(|_| invalid("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must use http or https"));
    }
    if url.cannot_be_a_base() || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "must be a plain http(s) URL without query or fragment",
        ));
    }
    Ok(url)
}

/// Whole milliseconds, saturating.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// "5s" for whole seconds, "200ms" otherwise.
pub fn human(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", millis(duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_messages() {
        let long = "é".repeat(300);
        let cleaned = clean(&long, 200, "key");
        assert_eq!(cleaned.chars().count(), 201);
        assert!(cleaned.ends_with('…'));
        assert_eq!(clean(" a\nb\tc ", 200, "key"), "a b c");
        assert_eq!(
            clean("bad key server-123!", 200, "server-123"),
            "bad key [redacted]!"
        );
        assert_eq!(clean("nothing hidden", 200, ""), "nothing hidden");
    }

    #[test]
    fn refusals_are_cleaned_cut_and_never_empty() {
        let refusal = Refusal::shown(Some(" bad\nkey-1 "), Some(&"m".repeat(300)), "key-1");
        assert_eq!(refusal.code, "bad [redacted]");
        assert_eq!(refusal.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        let empty = Refusal::shown(Some(" "), None, "key-1");
        assert_eq!(
            (empty.code.as_str(), empty.message.as_str()),
            ("unknown", "no message")
        );
    }

    #[test]
    fn shown_urls_have_no_user_info() {
        for (raw, shown) in [
            ("https://api.stigg.io", "https://api.stigg.io/"),
            ("http://user:pass@host:81/base", "http://host:81/base"),
            ("http://token@host/", "http://host/"),
            // Not a URL: still nothing before the `@`.
            ("http://us er:pa ss@ho st/x", "http://ho st/x"),
            ("user:pass@host", "host"),
        ] {
            assert_eq!(shown_url(raw), shown, "{raw}");
        }
    }

    #[test]
    fn base_urls_are_plain_http() {
        assert!(parse_base_url(" https://api.stripe.com ").is_ok());
        assert!(parse_base_url("http://127.0.0.1:1/prefix").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "nope",
            "https://h/?q=1",
            "https://h/#f",
        ] {
            assert!(parse_base_url(bad).is_err(), "{bad}");
        }
        let error = parse_base_url("ftp://user:secret@host").unwrap_err();
        assert!(!error.contains("secret"), "{error}");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_millis(200)), "200ms");
        assert_eq!(human(Duration::from_millis(1500)), "1500ms");
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
