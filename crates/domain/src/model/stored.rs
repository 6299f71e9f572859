use std::str::FromStr;

use super::IdError;

/// A value another system wrote, parsed when read. An invalid one is kept with its reason, so
/// that it can be reported (`reconcile` names it), and it never equals a parsed value: a
/// stored id that breaks its rule matches no request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored<T> {
    Valid(T),
    Invalid { raw: String, error: IdError },
}

impl<T: FromStr<Err = IdError>> Stored<T> {
    pub fn parse(raw: String) -> Self {
        match raw.parse() {
            Ok(value) => Self::Valid(value),
            Err(error) => Self::Invalid { raw, error },
        }
    }
}

impl<T: AsRef<str>> Stored<T> {
    /// The text as stored, valid or not (for messages).
    pub fn raw(&self) -> &str {
        match self {
            Self::Valid(value) => value.as_ref(),
            Self::Invalid { raw, .. } => raw,
        }
    }
}

impl<T> Stored<T> {
    /// The value, when it follows its rule.
    pub fn valid(&self) -> Option<&T> {
        match self {
            Self::Valid(value) => Some(value),
            Self::Invalid { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StripeCustomerId;

    #[test]
    fn a_valid_value_is_parsed_and_an_invalid_one_kept_with_its_reason() {
        let valid = Stored::<StripeCustomerId>::parse("cus_A1".into());
        assert_eq!(valid.valid().map(StripeCustomerId::as_str), Some("cus_A1"));

        let invalid = Stored::<StripeCustomerId>::parse("cus_has space".into());
        assert_eq!(invalid.valid(), None);
        match invalid {
            Stored::Invalid { raw, error } => {
                assert_eq!(raw, "cus_has space");
                assert!(!error.0.is_empty());
            }
            Stored::Valid(value) => panic!("parsed {value}"),
        }
    }
}
