//! Input as an edge (an HTTP body or header, a command-line argument) received it, field by
//! field, and what is wrong with each field. Every use case's request parses its fields
//! through [`parse_field`], so every edge reports problems the same way.

use serde::Serialize;

/// One raw input field as an edge received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field<'a> {
    /// Absent (or JSON `null`).
    Missing,
    /// Present but unusable before parsing (e.g. not a string); the message says why.
    Invalid(String),
    Value(&'a str),
}

/// One offending input field and what is wrong with it, for the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses one field named `name` with `parse`; on any problem (missing, invalid, refused by
/// `parse`) records it in `errors` and returns `None`, so a request can name every offending
/// field at once.
pub fn parse_field<T, E: ToString>(
    raw: &Field<'_>,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let problem = match raw {
        Field::Value(value) => match parse(value) {
            Ok(parsed) => return Some(parsed),
            Err(e) => e.to_string(),
        },
        Field::Missing => "is required".to_owned(),
        Field::Invalid(message) => message.clone(),
    };
    errors.push(FieldError::new(name, problem));
    None
}
