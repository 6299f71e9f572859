//! What a route does with its request before anything is looked up: the JSON body read as an
//! object, field by field, and the one 400 that names every offending header and field.
//!
//! A route names its fields and parses them into its use case's request; the plumbing shared
//! by every route (content type, JSON, repeated names, types) is here.

use actix_web::http::header::HeaderValue;
use onboarding_domain::input::{Field, FieldError};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

/// Why a request was refused before anything was looked up: the 400's message and every
/// offending header and body field, in the order the answer lists them (headers first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequest {
    pub message: &'static str,
    pub details: Vec<FieldError>,
}

/// The headers' and the body's parts of a request, or one refusal naming the problems of
/// both, headers first, its message saying which of the two are wrong.
pub fn both<H, B>(
    headers: Result<H, Vec<FieldError>>,
    body: Result<B, Vec<FieldError>>,
) -> Result<(H, B), InvalidRequest> {
    match (headers, body) {
        (Ok(headers), Ok(body)) => Ok((headers, body)),
        (Err(headers), Ok(_)) => Err(InvalidRequest {
            message: "request headers are invalid",
            details: headers,
        }),
        (Ok(_), Err(body)) => Err(InvalidRequest {
            message: "request body is invalid",
            details: body,
        }),
        (Err(headers), Err(body)) => Err(InvalidRequest {
            message: "request headers and body are invalid",
            details: headers.into_iter().chain(body).collect(),
        }),
    }
}

/// A request body read as a JSON object, for a route's own fields.
pub struct JsonObject {
    object: Map<String, Value>,
    /// The route's fields the object names more than once.
    repeated: Vec<&'static str>,
}

impl JsonObject {
    /// Reads `body` as a JSON object, or names what is wrong with it: a content type other
    /// than JSON (or none), no body, not JSON, not an object. `fields` are the route's
    /// fields, as the contract names them.
    pub fn read(
        content_type: Option<&HeaderValue>,
        body: &[u8],
        fields: &'static [&'static str],
    ) -> Result<Self, Vec<FieldError>> {
        // A missing type is refused like a wrong one: the contract's body is JSON, said so.
        let declared_type = content_type.map(|v| v.to_str().unwrap_or_default());
        if !declared_type.is_some_and(is_json) {
            return Err(vec![FieldError::new(
                "content-type",
                "must be application/json",
            )]);
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(vec![FieldError::new("body", "is required: a JSON object")]);
        }
        let object = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(vec![FieldError::new("body", "must be a JSON object")]),
            Err(e) => {
                return Err(vec![FieldError::new(
                    "body",
                    format!("is not valid JSON ({e})"),
                )]);
            }
        };
        // serde_json keeps the last of repeated names, silently. For the contract's fields
        // that would let a body say two things at once (`"orgId":"a", ..., "orgId":"b"`) and
        // act on whichever came last, while a proxy or log reader may believe the first: such
        // a field is refused, like a repeated header. Repeated unknown fields are ignored, as
        // unknown fields are.
        let mut names = serde_json::Deserializer::from_slice(body);
        let repeated = RepeatedFields(fields)
            .deserialize(&mut names)
            .unwrap_or_default();
        Ok(Self { object, repeated })
    }

    /// One of the route's fields, for the domain to parse: missing (absent or `null`), given
    /// more than once, not a string, or its text.
    pub fn field(&self, name: &'static str) -> Field<'_> {
        if self.repeated.contains(&name) {
            return Field::Invalid("must be given once".to_owned());
        }
        match self.object.get(name) {
            None | Some(Value::Null) => Field::Missing,
            Some(Value::String(text)) => Field::Value(text),
            Some(other) => Field::Invalid(format!("must be a string, not {}", json_type(other))),
        }
    }
}

/// Which of its fields the top-level JSON object names more than once (read in a second pass
/// over the body, after it parsed as an object: at most 16 KiB, values skipped unparsed).
struct RepeatedFields(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for RepeatedFields {
    type Value = Vec<&'static str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RepeatedFields {
    type Value = Vec<&'static str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = vec![false; self.0.len()];
        let mut repeated = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            let known = self
                .0
                .iter()
                .zip(seen.iter_mut())
                .find(|(f, _)| **f == name);
            if let Some((field, seen)) = known {
                if *seen && !repeated.contains(field) {
                    repeated.push(*field);
                }
                *seen = true;
            }
        }
        Ok(repeated)
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["a", "b"];

    fn read(body: &str) -> Result<JsonObject, Vec<FieldError>> {
        let json = HeaderValue::from_static("application/json; charset=utf-8");
        JsonObject::read(Some(&json), body.as_bytes(), FIELDS)
    }

    #[test]
    fn fields_are_read_by_name_and_named_problems_by_kind() {
        let object = read(r#"{"a":"x","a":"y","b":1,"c":"z","c":"w"}"#).unwrap();
        assert_eq!(
            object.field("a"),
            Field::Invalid("must be given once".into())
        );
        assert_eq!(
            object.field("b"),
            Field::Invalid("must be a string, not a number".into())
        );
        let object = read(r#"{"a":"x","b":null}"#).unwrap();
        assert_eq!(object.field("a"), Field::Value("x"));
        assert_eq!(object.field("b"), Field::Missing);
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_named() {
        let problem = |body: &str| read(body).err().map(|e| e[0].message.clone());
        assert_eq!(problem(" \n"), Some("is required: a JSON object".into()));
        assert_eq!(problem("[1]"), Some("must be a JSON object".into()));
        assert!(problem("{").is_some_and(|m| m.starts_with("is not valid JSON")));
        let refused = JsonObject::read(None, b"{}", FIELDS)
            .err()
            .unwrap_or_default();
        assert_eq!(refused[0].field, "content-type");
    }

    #[test]
    fn a_refusal_says_which_parts_are_wrong_headers_first() {
        let header = || vec![FieldError::new("x-request-id", "is required")];
        let body = || vec![FieldError::new("body", "must be a JSON object")];
        let refused = both::<(), ()>(Err(header()), Err(body())).err();
        let refused = refused.expect("accepted");
        assert_eq!(refused.message, "request headers and body are invalid");
        assert_eq!(refused.details, [header(), body()].concat());
        let message = |r: Result<((), ()), InvalidRequest>| r.err().map(|i| i.message);
        assert_eq!(
            message(both(Err(header()), Ok(()))),
            Some("request headers are invalid")
        );
        assert_eq!(
            message(both(Ok(()), Err(body()))),
            Some("request body is invalid")
        );
        assert_eq!(message(both(Ok(()), Ok(()))), None);
    }
}
