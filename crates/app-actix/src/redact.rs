//! Request bodies as they may be kept in `debug_logs`: secrets masked, at most 8 KiB.
//!
//! No secret is stored, whatever the body looks like. Valid JSON is masked field by field: the
//! value of a secret-looking key, and any string or number that looks like a secret. Any other
//! body is masked as text: the value after a secret-looking `key=` or `key:`, and the same
//! secret-looking values. Masking too much is acceptable, too little is not. Most bodies hold
//! nothing to mask, which a byte scan proves: those are kept as sent, without parsing.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// Longest body kept in a debug-log row.
pub const MAX_LOGGED_BODY_BYTES: usize = 8 * 1024;

const MASK: &str = "[REDACTED]";

/// A key is secret when its folded form (see [`fold`]) contains one of these: `pass` also
/// stands for `password` and `passwd`, `key` for `apiKey` and `privateKey`, `auth` for
/// `authorization`, `card` for `cardNumber`, `credential` for `credentials`.
const SECRET_WORDS: [&str; 13] = [
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "credential",
    "cookie",
    "session",
    "card",
    "cvc",
    "cvv",
    "signature",
];

/// What the beginnings of [`TOKEN`]'s keys fold to.
const TOKEN_PREFIXES: [&str; 7] = [
    "sklive", "sktest", "rklive", "rktest", "pklive", "pktest", "whsec",
];

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"))
}

/// Stripe secret, restricted and publishable keys (the last are not secret, but masking them
/// costs nothing) and webhook secrets. A bare `rk_` must not follow a letter or digit, so that
/// `network_id` is kept.
static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        r"(?i)(?:^|[^a-z0-9])(rk_[a-z0-9_]{6,})",
        r"|((?:sk|rk|pk)_(?:live|test)_[a-z0-9]+|whsec_[a-z0-9]+)",
    ))
});

/// A run of digits, with single spaces or dashes between them: `4242 4242 4242 4242`.
static DIGITS: LazyLock<Regex> = LazyLock::new(|| regex(r"[0-9](?:[ -]?[0-9])*"));

/// A key and its separator, as in `"key": `, `'key' = `, `key=` or `Key: `. An unquoted key
/// runs back to the previous delimiter, spaces included (`pass word: x`): a longer key only
/// holds more words. `\"key\"`, from JSON inside a JSON string, is a key too.
static KEY: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        r#"(?s)(?:"((?:[^"\\:=]|\\.)*)""#,
        r#"|'((?:[^'\\:=]|\\.)*)'"#,
        r#"|["']?((?:[^"'\\=:&,;{}\[\]\r\n]|\\.)+)["']?)"#,
        r"[ \t]*[:=][ \t]*",
    ))
});

/// In a folded body: 13 digits in a row (perhaps apart in the body), or a number in exponent
/// notation, which JSON writes out in full (`1.5e15` as `1500000000000000.0`).
static LONG_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| regex(r"[0-9]{13}|(?:^|[^a-z0-9])[0-9]+e[0-9+]"));

/// A key as it is compared: lower case, without `_`, `-`, `.` and spaces.
fn fold(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Keys whose values are never stored. A key with an escape in it (`\u0070assword`,
/// `pass%77ord`) may spell any word, so it is taken for a secret one.
fn is_secret_key(key: &str) -> bool {
    let folded = fold(key);
    key.contains(['\\', '%']) || SECRET_WORDS.iter().any(|word| folded.contains(word))
}

/// True when `body` surely holds nothing to mask, without parsing it. ASCII without escapes,
/// so every key and string is a run of the body's own bytes: when the body, folded as keys
/// are, contains no secret word, no key prefix and no long number, none of them does.
fn surely_nothing_to_mask(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    // `rk_` in any case, without a lower-cased copy of the body (this runs on every request).
    let has_rk = text
        .as_bytes()
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"rk_"));
    if !text.is_ascii() || text.contains(['\\', '%']) || has_rk {
        return false;
    }
    let folded = fold(text);
    !SECRET_WORDS
        .iter()
        .chain(&TOKEN_PREFIXES)
        .any(|word| folded.contains(word))
        && !LONG_NUMBER.is_match(&folded)
}

/// Whether a run of digits may hold a card number: 13 to 19 of them that pass the Luhn check,
/// the whole run or a part (`4242 4242 4242 4242 123`, a card and its CVC). A longer run may
/// hide one anywhere: it is masked whole.
fn holds_card_number(run: &str) -> bool {
    let digits: Vec<u32> = run
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .collect();
    match digits.len() {
        0..13 => false,
        13..=19 => (13..=digits.len()).any(|len| digits.windows(len).any(passes_luhn)),
        _ => true,
    }
}

fn passes_luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2, d * 2) {
            (0, _) => d,
            (_, twice) if twice > 9 => twice - 9,
            (_, twice) => twice,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Where the value after a secret key's separator lies in `rest`: inside its quotes (escapes
/// skipped), up to the closing bracket of a `{…}` or `[…]`, or else up to `&`, `,`, `;`, `}`,
/// `]` or the end of the line (`to_line_end`: only the end of the line, for
/// `Authorization: Bearer abc` or a cookie list). Without an end, up to the end of the text.
fn value_span(rest: &str, to_line_end: bool) -> Range<usize> {
    let bytes = rest.as_bytes();
    let quote_len = match bytes {
        [b'"' | b'\'', ..] => 1,
        [b'\\', b'"' | b'\'', ..] => 2,
        _ => 0,
    };
    if quote_len > 0 {
        let quote = &bytes[..quote_len];
        let mut i = quote_len;
        while i < bytes.len() && !bytes[i..].starts_with(quote) {
            i += if quote_len == 1 && bytes[i] == b'\\' {
                2
            } else {
                1
            };
        }
        return quote_len..i.min(bytes.len());
    }
    if let [b'{' | b'[', ..] = bytes {
        let (mut depth, mut in_string, mut i) = (0, false, 0);
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 1,
                b'"' => in_string = !in_string,
                b'{' | b'[' if !in_string => depth += 1,
                b'}' | b']' if !in_string => {
                    depth -= 1;
                    if depth == 0 {
                        return 0..i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        return 0..bytes.len();
    }
    let ends: &[u8] = if to_line_end { b"\r\n" } else { b"&,;}]\r\n" };
    0..bytes
        .iter()
        .position(|b| ends.contains(b))
        .unwrap_or(bytes.len())
}

/// What to mask in `text`, in no order: the values of secret-looking keys, and secret-looking
/// values wherever they are.
fn secret_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    // A key inside a value masked already goes with it (and scanning its value again and
    // again could take quadratic time).
    let mut masked_to = 0;
    for key in KEY.captures_iter(text) {
        let (Some(whole), Some(name)) = (key.get(0), key.iter().skip(1).flatten().next()) else {
            continue;
        };
        if whole.start() >= masked_to && is_secret_key(name.as_str()) {
            let folded = fold(name.as_str());
            let to_line_end = folded.contains("auth") || folded.contains("cookie");
            let value = value_span(&text[whole.end()..], to_line_end);
            spans.push(whole.end() + value.start..whole.end() + value.end);
            masked_to = whole.end() + value.end;
        }
    }
    for token in TOKEN.captures_iter(text) {
        spans.extend(token.iter().skip(1).flatten().map(|m| m.range()));
    }
    spans.extend(
        DIGITS
            .find_iter(text)
            .filter(|run| holds_card_number(run.as_str()))
            .map(|run| run.range()),
    );
    spans
}

/// `text` with its secret spans replaced by [`MASK`], overlapping ones by a single mask.
fn redact_text(text: &str) -> String {
    let mut spans = secret_spans(text);
    spans.sort_by_key(|span| span.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        if span.end <= at || span.is_empty() {
            continue;
        }
        if span.start >= at {
            out.push_str(&text[at..span.start]);
            out.push_str(MASK);
        }
        at = span.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Masks a JSON value in place: the whole value of a secret-looking key, every string (keys
/// included) as text, and a number that may be a card number.
fn mask_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            *map = std::mem::take(map)
                .into_iter()
                .map(|(key, mut value)| {
                    if is_secret_key(&key) {
                        value = Value::String(MASK.to_owned());
                    } else {
                        mask_json(&mut value);
                    }
                    (redact_text(&key), value)
                })
                .collect();
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        Value::String(text) => *text = redact_text(text),
        Value::Number(number) => {
            let text = number.to_string();
            let holds_card = if number.is_f64() {
                // Digits rounded, or apart around a dot (`4.242424242424242e15`): any float
                // with 13 of them may be a card number.
                text.bytes()
                    .take_while(|b| *b != b'e')
                    .filter(u8::is_ascii_digit)
                    .count()
                    >= 13
            } else {
                !secret_spans(&text).is_empty()
            };
            if holds_card {
                *value = Value::String(MASK.to_owned());
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// The body with its secrets masked, without the shortcut: JSON (a UTF-8 BOM aside) written
/// again compactly, anything else masked as text.
fn redact(body: &[u8]) -> String {
    let json = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match serde_json::from_slice::<Value>(json) {
        Ok(mut json) => {
            mask_json(&mut json);
            json.to_string()
        }
        Err(_) => redact_text(&String::from_utf8_lossy(body)),
    }
}

/// Text from outside (e.g. Stigg's error message) as it may be shown to a caller: masked by
/// the same rules as a body that is not JSON.
pub fn redact_message(text: &str) -> String {
    redact_text(text)
}

/// The body to store for a request: secrets masked, cut at 8 KiB on a character boundary.
/// `None` for an empty body.
pub fn body_for_debug_log(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = if surely_nothing_to_mask(body) {
        // ASCII, so valid UTF-8: kept byte for byte.
        String::from_utf8_lossy(body).into_owned()
    } else {
        redact(body)
    };
    // After masking, so that a secret cut in two is still recognised.
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
    use proptest::prelude::*;
    use proptest::string::string_regex;

    /// The provision body as clients send it.
    const PROVISION: &str = r#"{"orgId":"org_8Yp2","stripeCustomerId":"cus_Q1w2E3","stripeSubscriptionId":"sub_9Zx8Y7","planCode":"plan_starter_m"}"#;

    fn kept(body: &[u8]) -> String {
        body_for_debug_log(body).expect("nothing kept")
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn assert_masked(body: &[u8], secrets: &[&str]) {
        let kept = kept(body);
        assert!(kept.contains(MASK), "nothing masked in {kept}");
        for secret in secrets {
            assert!(!kept.contains(secret), "{secret} leaked in {kept}");
        }
    }

    #[test]
    fn a_provision_body_is_kept_as_sent() {
        let pretty = serde_json::to_string_pretty(&json(PROVISION)).unwrap_or_default();
        for body in [PROVISION, pretty.as_str()] {
            assert!(surely_nothing_to_mask(body.as_bytes()), "{body}");
            assert_eq!(kept(body.as_bytes()), body);
            // The full redaction agrees.
            assert_eq!(json(&redact(body.as_bytes())), json(body));
        }
        for key in [
            "orgId",
            "stripeCustomerId",
            "stripeSubscriptionId",
            "planCode",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn masks_secret_fields_at_any_depth() {
        let body = br#"{"orgId":"org_1","apiKey":"k1","nested":{"client_secret":"s","list":[{"Password":"p"}]}}"#;
        let kept = kept(body);
        assert!(kept.contains("org_1"));
        for secret in ["k1", "\"s\"", "\"p\""] {
            assert!(!kept.contains(secret), "{secret} leaked in {kept}");
        }
    }

    #[test]
    fn secret_keys_in_any_case_or_separator() {
        let keys = [
            "password",
            "Password",
            "PASSWD",
            "pwd",
            "pass",
            "secret",
            "client_secret",
            "token",
            "access-token",
            "apiKey",
            "api_key",
            "API_KEY",
            "Api-Key",
            "api.key",
            "api key",
            "key",
            "KEY",
            "privateKey",
            "authorization",
            "Authorization",
            "credentials",
            "cookie",
            "Set-Cookie",
            "sessionId",
            "cardNumber",
            "card_number",
            "card",
            "cvc",
            "CVV",
            "signature",
            "Stripe-Signature",
        ];
        for key in keys {
            assert!(is_secret_key(key), "{key}");
            for body in [
                format!(r#"{{"{key}":"hunter2"}}"#),
                format!(r#"{{"orgId":"org_1","{key}":{{"a":["hunter2"]}}}}"#),
                format!("orgId=org_1&{key}=hunter2&planCode=p"),
                format!("{key}: hunter2\n"),
                format!(r#"{{"orgId":"org_1","{key}":"hunter2"#),
            ] {
                assert_masked(body.as_bytes(), &["hunter2"]);
            }
        }
    }

    #[test]
    fn secret_values_are_masked_under_any_key() {
        let cases: [(&str, &[&str]); 19] = [
            (r#"{"orgId":"sk_live_51Habc"}"#, &["sk_live", "51Habc"]),
            (r#"{"orgId":"rk_test_abc123"}"#, &["abc123"]),
            (r#"{"note":"use pk_live_xyz9 here"}"#, &["xyz9"]),
            (r#"{"orgId":"whsec_abc123"}"#, &["abc123"]),
            (r#"{"orgId":"x-rk_abc123def"}"#, &["abc123def"]),
            (r#"{"n":"4242424242424242"}"#, &["4242"]),
            (r#"{"n":"4242 4242 4242 4242"}"#, &["4242"]),
            (r#"{"n":"4000-0566-5566-5556"}"#, &["5556"]),
            (
                r#"{"n":"4222222222222 and 378282246310005"}"#,
                &["4222", "3782"],
            ),
            (r#"{"n":4242424242424242}"#, &["4242"]),
            (
                r#"{"n":[-4242424242424242, 4242424242424242.0]}"#,
                &["4242"],
            ),
            (r#"{"n":4.242424242424242e15}"#, &["242424"]),
            (r#"{"n":"card 4242 4242 4242 4242 123 12/34"}"#, &["4242"]),
            (r#"{"n":"6205500000000000004"}"#, &["6205"]),
            (r#"{"sk_live_51Habc":1}"#, &["51Habc"]),
            (
                r#"{"url":"https://x.test/cb?token=abc123&a=1"}"#,
                &["abc123"],
            ),
            (r#"{"note":"pwd: hunter2"}"#, &["hunter2"]),
            (r#"{"payload":"{\"password\":\"hunter2\"}"}"#, &["hunter2"]),
            ("4242424242424242", &["4242"]),
        ];
        for (body, secrets) in cases {
            assert_masked(body.as_bytes(), secrets);
        }
        // A card number that was a JSON number is masked as a string.
        assert_eq!(kept(br#"{"n":4242424242424242}"#), r#"{"n":"[REDACTED]"}"#);
    }

    #[test]
    fn bodies_that_are_not_json_are_masked_as_text() {
        let cases: [(&[u8], &[&str]); 13] = [
            (
                b"password=hunter2&apiKey=sk_live_x",
                &["hunter2", "sk_live_x"],
            ),
            (b"\xEF\xBB\xBF{\"password\":\"hunter2\"}", &["hunter2"]),
            (br#"{"password":"hunter2"} and more"#, &["hunter2"]),
            (br#"{"password":"hunt"#, &["hunt"]),
            (
                b"plain text with sk_live_51Habc in it",
                &["sk_live", "51Habc"],
            ),
            (b"Authorization: Bearer abc.def", &["Bearer", "abc", "def"]),
            (b"pwd: hunter2", &["hunter2"]),
            (b"'Api-Key' = 'hunter2'", &["hunter2"]),
            (
                br#"{"tokens":["hunter2","hunter3"],"#,
                &["hunter2", "hunter3"],
            ),
            (
                br#"{"data":"{\"password\":\"hunter2, really\"}""#,
                &["hunter2", "really"],
            ),
            // Escaped keys may spell anything.
            (br#"{"\u0070assword":"hunter2""#, &["hunter2"]),
            (b"pass%77ord=hunter2", &["hunter2"]),
            (
                b"\xFF password=hunter2 4242-4242-4242-4242",
                &["hunter2", "4242"],
            ),
        ];
        for (body, secrets) in cases {
            assert_masked(body, secrets);
        }
    }

    #[test]
    fn what_is_not_secret_is_kept_around_the_masks() {
        let cases: [(&str, &str); 6] = [
            (
                "orgId=org_8Yp2&password=hunter2&planCode=plan_starter_m",
                "orgId=org_8Yp2&password=[REDACTED]&planCode=plan_starter_m",
            ),
            (
                "Host: x.test\r\nAuthorization: Bearer abc.def\r\nAccept: */*",
                "Host: x.test\r\nAuthorization: [REDACTED]\r\nAccept: */*",
            ),
            (
                r#"{"orgId":"org_1","password":"hunt"#,
                r#"{"orgId":"org_1","password":"[REDACTED]"#,
            ),
            (
                r#"{"orgId":"org_1","tokens":["a1","b2"],"planCode":"p"} junk"#,
                r#"{"orgId":"org_1","tokens":[REDACTED],"planCode":"p"} junk"#,
            ),
            (
                r#"{ "orgId": "org_1", "secret": "x" }"#,
                r#"{"orgId":"org_1","secret":"[REDACTED]"}"#,
            ),
            // Long numbers that hold no card number, and `rk_` inside a word.
            (
                r#"{"a":"1234123412341234","b":1111111111111111,"c":"network_config","d":1.25e3}"#,
                r#"{"a":"1234123412341234","b":1111111111111111,"c":"network_config","d":1250.0}"#,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(kept(body.as_bytes()), expected, "{body}");
        }
    }

    #[test]
    fn the_shortcut_is_refused_for_anything_maskable() {
        let bodies = [
            r#"{"api-Key":"k"}"#,
            r#"{"\u0074oken":"t"}"#,
            "{\"cl\u{e9}\":\"x\"}",
            "Pass.Word=x",
            r#"{"a":"SK_Live_x"}"#,
            r#"{"a":"x_rk_abcdef"}"#,
            "a=Whsec_1",
            "a=4242 4242 4242 4",
            "a=4.242.424.242.424",
            "a=1%41",
            r#"{"a":1.5E+12}"#,
            r#"[-2e15]"#,
        ];
        for body in bodies {
            assert!(!surely_nothing_to_mask(body.as_bytes()), "{body}");
        }
    }

    #[test]
    fn long_bodies_are_cut_after_masking_on_a_character_boundary() {
        let body = "é".repeat(MAX_LOGGED_BODY_BYTES);
        let kept = body_for_debug_log(body.as_bytes()).unwrap_or_default();
        assert!(kept.len() <= MAX_LOGGED_BODY_BYTES);
        assert!(kept.len() >= MAX_LOGGED_BODY_BYTES - 1);
        assert_eq!(body_for_debug_log(b""), None);
        // Cut first, the key would have lost the end that makes it recognisable.
        let body = format!("{} sk_live_51Habc", "x".repeat(MAX_LOGGED_BODY_BYTES - 4));
        let kept = body_for_debug_log(body.as_bytes()).unwrap_or_default();
        assert_eq!(kept.len(), MAX_LOGGED_BODY_BYTES);
        assert!(!kept.contains("sk_"), "{}", &kept[kept.len() - 8..]);
    }

    // -----------------------------------------------------------------------------------------
    // Properties.

    fn strategy(pattern: &str) -> BoxedStrategy<String> {
        string_regex(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .boxed()
    }

    /// Keys that hold nothing to mask, whatever the shape of the body.
    fn plain_key() -> BoxedStrategy<String> {
        const KEYS: [&str; 6] = [
            "orgId",
            "stripeCustomerId",
            "stripeSubscriptionId",
            "planCode",
            "name",
            "seats",
        ];
        prop::sample::select(&KEYS[..])
            .prop_map(str::to_owned)
            .boxed()
    }

    /// Values that hold nothing to mask, whatever the shape of the body.
    fn plain_value() -> BoxedStrategy<String> {
        strategy("[0-9a-dA-D_ .-]{0,12}|[1-9][0-9]{0,11}|[0-9]{1,5}\\.[0-9]{1,5}")
    }

    fn plain_field() -> BoxedStrategy<(String, String)> {
        (plain_key(), plain_value()).boxed()
    }

    /// Keys near the shortcut's edges: secret words in any case and with any separator, and
    /// escaped keys.
    fn risky_key() -> BoxedStrategy<String> {
        prop_oneof![
            strategy(concat!(
                "[a-zA-Z_ .-]{0,3}",
                "(pass_?word|PassWd|pwd|Secret|TOKEN|api-key|api\\.Key|authoriZation|Cookie",
                "|session|card_number|CVV|cvc|credential|signature|Key|org|work)",
                "[a-zA-Z_ .-]{0,3}",
            )),
            strategy("\\\\u00[67][0-9a-f]oken|pass%77ord|[a-z]{0,2}%[0-9A-F]{2}[a-z]{0,3}"),
        ]
        .boxed()
    }

    /// Values near the shortcut's edges: key prefixes, `rk_` in a word, long numbers in pieces,
    /// exponents, `%`.
    fn risky_value() -> BoxedStrategy<String> {
        strategy(concat!(
            "(sk|rk|pk)_(live|test)_[a-zA-Z0-9]{1,6}|whsec_[a-z0-9]{1,6}|[a-z]{0,2}rk_[a-z0-9_]{6,8}",
            "|wor[kK]_?[a-z]{0,3}|[0-9]{4}([ -]?[0-9]{3,4}){1,4}|[0-9]{1,13}",
            "|-?[0-9]{1,4}(\\.[0-9]{1,3})?[eE][+-]?1[0-9]|[0-9]{1,6}\\.[0-9]{1,7}|%4[0-9]",
        ))
    }

    /// A body of some shape: JSON (compact, spaced, or cut short), form-encoded, or lines of
    /// text. In JSON a value that is a number is written as one.
    fn body(shape: u8, fields: &[(String, String)]) -> String {
        let json_value = |v: &String| match serde_json::from_str::<Value>(v) {
            Ok(Value::Number(_)) => v.clone(),
            _ => format!("\"{v}\""),
        };
        let json_fields = |sep: &str| -> Vec<String> {
            fields
                .iter()
                .map(|(k, v)| format!("\"{k}\":{sep}{}", json_value(v)))
                .collect()
        };
        match shape {
            0 => format!("{{{}}}", json_fields("").join(",")),
            1 => format!("{{ {} }}", json_fields(" ").join(", ")),
            2 => {
                let mut text = format!("{{{}", json_fields("").join(","));
                text.pop();
                text
            }
            3 => fields
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&"),
            _ => fields.iter().map(|(k, v)| format!("{k}: {v}\n")).collect(),
        }
    }

    /// A Luhn-valid card number of 13 to 19 digits, written plain, or by fours apart by spaces
    /// or dashes.
    fn card_number() -> impl Strategy<Value = String> {
        (prop::collection::vec(0..10u32, 12..=18), 0..3usize).prop_map(|(mut digits, style)| {
            let check = (0..10).find(|c| {
                let mut all = digits.clone();
                all.push(*c);
                passes_luhn(&all)
            });
            digits.push(check.unwrap_or_default());
            let text: String = digits.iter().map(u32::to_string).collect();
            let groups: Vec<&str> = (0..text.len())
                .step_by(4)
                .map(|i| &text[i..(i + 4).min(text.len())])
                .collect();
            match style {
                0 => text,
                1 => groups.join(" "),
                _ => groups.join("-"),
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Whatever the keys and values, a body kept as sent is what the full redaction would
        /// have stored (as JSON data, for JSON written again), so it had nothing to mask.
        #[test]
        fn the_shortcut_never_skips_a_secret(
            shape in 0..5u8,
            fields in prop::collection::vec(
                (
                    prop_oneof![3 => plain_key(), 1 => risky_key()],
                    prop_oneof![plain_value(), risky_value()],
                ),
                0..4,
            ),
        ) {
            let body = body(shape, &fields);
            if surely_nothing_to_mask(body.as_bytes()) {
                let full = redact(body.as_bytes());
                match serde_json::from_str::<Value>(&body) {
                    Ok(sent) => prop_assert_eq!(json(&full), sent, "{}", body),
                    Err(_) => prop_assert_eq!(&full, &body),
                }
            }
        }

        /// The shortcut is taken, so the property above is not vacuous: bodies of the same
        /// shapes from plain fields are kept as sent.
        #[test]
        fn plain_bodies_take_the_shortcut(
            shape in 0..5u8,
            fields in prop::collection::vec(plain_field(), 0..4),
        ) {
            let body = body(shape, &fields);
            prop_assert!(surely_nothing_to_mask(body.as_bytes()), "{}", body);
            let expected = (!body.is_empty()).then_some(body.as_str());
            let kept = body_for_debug_log(body.as_bytes());
            prop_assert_eq!(kept.as_deref(), expected);
        }

        /// A secret-looking key's value is never stored, in JSON, broken JSON, a form or text.
        #[test]
        fn values_of_secret_keys_are_never_stored(
            key in strategy(concat!(
                "[a-z]{0,3}(password|Passwd|PWD|pass|secret|Token|apiKey|api_key|API-KEY|key",
                "|Authorization|credentials|Cookie|session|cardNumber|card|cvc|cvv|signature)",
                "[A-Za-z_]{0,3}",
            )),
            value in "[a-zA-Z0-9]{6,16}",
            shape in 0..9u8,
        ) {
            prop_assume!(!key.contains(&value));
            let body = match shape {
                0 => format!("orgId=org_1&{key}={value}&planCode=p"),
                1 => format!("orgId: org_1\n{key} = {value}\n"),
                2 => format!("'{key}': '{value}'"),
                3 => format!(r#"{{"orgId":"org_1","{key}":"{value}"#),
                4 => format!(r#"{{"{key}":"{value}"}} trailing"#),
                5 => format!("\u{feff}{{\"{key}\":\"{value}\"}}"),
                6 => format!(r#"{{"orgId":"org_1","{key}":["{value}","{value}"]"#),
                7 => format!(r#"{{"note":"{{\"{key}\":\"{value}\"}}"#),
                _ => format!(r#"{{"orgId":"org_1","{key}":"{value}"}}"#),
            };
            let kept = kept(body.as_bytes());
            prop_assert!(!kept.contains(&value) && kept.contains(MASK), "{} -> {}", body, kept);
        }

        /// A Stripe key, webhook secret or card number is never stored, whatever the text
        /// around it.
        #[test]
        fn secret_values_are_never_stored(
            before in "[a-zA-Z0-9 ,.:;=&\n{}\\[\\]\"'_-]{0,16}",
            secret in prop_oneof![
                strategy("(sk|rk)_(live|test)_[a-zA-Z0-9]{4,24}|whsec_[a-zA-Z0-9]{4,24}"),
                card_number(),
            ],
            after in "[a-zA-Z0-9 ,.:;=&\n{}\\[\\]\"'_-]{0,16}",
        ) {
            let body = format!("{before}{secret}{after}");
            let kept = kept(body.as_bytes());
            let digits: String = secret.chars().filter(char::is_ascii_digit).collect();
            prop_assert!(kept.contains(MASK), "{} -> {}", body, kept);
            prop_assert!(!kept.contains(&secret), "{} -> {}", body, kept);
            if !secret.contains('_') {
                prop_assert!(!kept.contains(&digits), "{} -> {}", body, kept);
            }
        }
    }
}
