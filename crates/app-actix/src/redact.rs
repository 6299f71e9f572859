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
    SECRET_WORDS.iter().any(|s| key.contains(s))
}

const SECRET_WORDS: [&str; 7] = [
    "password",
    "secret",
    "token",
    "apikey",
    "authorization",
    "cardnumber",
    "cvc",
];

/// True when no key of `body` can be a secret's, without parsing it. With only ASCII and no
/// escapes, every key is a run of the body's own bytes, so a secret word that the whole body,
/// folded as [`is_secret_key`] folds keys, does not contain is in no key either. Most bodies
/// pass, and are kept as sent instead of parsed and written again.
fn surely_without_secret_keys(body: &[u8]) -> bool {
    if !body.is_ascii() || body.contains(&b'\\') {
        return false;
    }
    let folded: String = body
        .iter()
        .filter(|b| **b != b'_' && **b != b'-')
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect();
    !SECRET_WORDS.iter().any(|word| folded.contains(word))
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
    if surely_without_secret_keys(body) {
        // ASCII, so valid UTF-8: kept byte for byte.
        return Some(truncate(
            String::from_utf8_lossy(body).into_owned(),
            MAX_LOGGED_BODY_BYTES,
        ));
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
    fn bodies_without_secret_words_are_kept_as_sent() {
        let body = br#"{ "orgId": "org_1", "planCode": "plan_starter_m" }"#;
        assert_eq!(
            body_for_debug_log(body).as_deref(),
            Some(r#"{ "orgId": "org_1", "planCode": "plan_starter_m" }"#)
        );
        // Folding applies to the whole body: `api-Key` and an escaped key take the full path.
        assert!(!surely_without_secret_keys(br#"{"api-Key":"k"}"#));
        assert!(!surely_without_secret_keys(br#"{"\u0074oken":"t"}"#));
        assert!(!surely_without_secret_keys(
            "{\"cl\u{e9}\":\"x\"}".as_bytes()
        ));
    }

    proptest::proptest! {
        /// Whatever the keys (secret words in any case, split by `_`/`-`, escaped or not), a
        /// body kept as sent holds the same data as the masked one, so it had nothing to mask.
        #[test]
        fn the_shortcut_never_skips_a_secret(
            keys in proptest::collection::vec(
                proptest::string::string_regex(
                    r"([a-zA-Z_-]{0,4}(pass_?word|Secret|TOKEN|api-key|apiKey|authoriZation|card_number|cvc|Pass|Key|org)[a-zA-Z_-]{0,4}|\\u00[67][0-9a-f]oken)"
                ).unwrap_or_else(|e| panic!("{e}")),
                1..4,
            ),
            value in "[a-z0-9]{0,8}",
        ) {
            let fields: Vec<String> =
                keys.iter().map(|k| format!(r#""{k}":"{value}""#)).collect();
            let body = format!("{{{}}}", fields.join(","));
            if surely_without_secret_keys(body.as_bytes())
                && let Ok(sent) = serde_json::from_str::<Value>(&body)
            {
                let mut masked = sent.clone();
                mask(&mut masked);
                proptest::prop_assert_eq!(sent, masked, "{}", body);
            }
        }

        /// The shortcut is taken, so the property above is not vacuous: keys and values with
        /// no secret word in them are kept as sent.
        #[test]
        fn plain_bodies_take_the_shortcut(
            keys in proptest::collection::vec(
                proptest::sample::select(&["orgId", "planCode", "Pass", "api_url", "KEY"][..]),
                1..4,
            ),
            value in "[0-9]{0,8}",
        ) {
            let fields: Vec<String> =
                keys.iter().map(|k| format!(r#""{k}":"{value}""#)).collect();
            let body = format!("{{{}}}", fields.join(","));
            proptest::prop_assert!(surely_without_secret_keys(body.as_bytes()), "{}", body);
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
