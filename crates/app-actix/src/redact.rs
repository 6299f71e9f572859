//! Request bodies as they may be kept: secrets masked, at most 8 KiB.

use serde_json::Value;

/// Longest body kept in a debug-log row.
pub const MAX_LOGGED_BODY_BYTES: usize = 8 * 1024;

const MASK: &str = "[REDACTED]";

/// Keys whose values are never stored, whatever the route (compared in lower case, without
/// `_` and `-`).
fn is_secret_key(key: &str) -> bool {
    let key: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    [
        "password",
        "secret",
        "token",
        "apikey",
        "authorization",
        "cardnumber",
        "cvc",
    ]
    .iter()
    .any(|s| key.contains(s))
}

fn mask(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if is_secret_key(key) {
                    *value = Value::String(MASK.to_owned());
                } else {
                    mask(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

/// The body to store for a request: JSON with secret-looking fields masked, or the raw text;
/// cut at 8 KiB on a character boundary. `None` for an empty body.
pub fn body_for_debug_log(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut json) => {
            mask(&mut json);
            json.to_string()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    Some(truncate(text, MAX_LOGGED_BODY_BYTES))
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let cut = (0..=max)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secret_fields_at_any_depth() {
        let body = br#"{"orgId":"org_1","apiKey":"k1","nested":{"client_secret":"s","list":[{"Password":"p"}]}}"#;
        let kept = body_for_debug_log(body).unwrap_or_default();
        assert!(kept.contains("org_1"));
        for secret in ["k1", "\"s\"", "\"p\""] {
            assert!(!kept.contains(secret), "{secret} leaked in {kept}");
        }
    }

    #[test]
    fn cuts_long_bodies_on_a_character_boundary() {
        let body = "é".repeat(MAX_LOGGED_BODY_BYTES);
        let kept = body_for_debug_log(body.as_bytes()).unwrap_or_default();
        assert!(kept.len() <= MAX_LOGGED_BODY_BYTES);
        assert!(kept.len() >= MAX_LOGGED_BODY_BYTES - 1);
        assert_eq!(body_for_debug_log(b""), None);
    }
}
