//! Typed access to a request body's fields, answering Stigg's `BadUserInput` for a field of
//! the wrong type.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use crate::reply::Reply;
use crate::store::{Metadata, Trial};

/// Longest string Stigg accepts in a field.
pub(crate) const MAX_LEN: usize = 255;
/// Trial length when `trialOverrideConfiguration` asks for a trial without an end date (the
/// emulated plans carry no default trial of their own).
const DEFAULT_TRIAL_DAYS: i64 = 14;

/// Typed access to the request body's fields; `null` counts as absent, as in Stigg's SDK types.
pub(crate) struct Fields<'a>(pub(crate) &'a Map<String, Value>);

impl Fields<'_> {
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|value| !value.is_null())
    }

    pub(crate) fn optional_str(&self, name: &str) -> Result<Option<String>, Reply> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(value)) if value.chars().count() <= MAX_LEN => {
                Ok(Some(value.clone()))
            }
            Some(Value::String(_)) => Err(Reply::bad_input(format!(
                "{name} must be at most {MAX_LEN} characters"
            ))),
            Some(_) => Err(Reply::bad_input(format!("{name} must be a string"))),
        }
    }

    pub(crate) fn required_str(&self, name: &str) -> Result<String, Reply> {
        self.optional_str(name)?
            .ok_or_else(|| Reply::bad_input(format!("{name} is required")))
    }

    pub(crate) fn optional_date(&self, name: &str) -> Result<Option<DateTime<Utc>>, Reply> {
        self.optional_str(name)?
            .map(|value| {
                DateTime::parse_from_rfc3339(&value)
                    .map(|at| at.with_timezone(&Utc))
                    .map_err(|_| Reply::bad_input(format!("{name} must be an ISO 8601 date-time")))
            })
            .transpose()
    }

    pub(crate) fn metadata(&self) -> Result<Metadata, Reply> {
        let invalid = || {
            Reply::error(
                400,
                "InvalidMetadataError",
                "Metadata values must be strings",
            )
        };
        match self.get("metadata") {
            None => Ok(Metadata::new()),
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(key, value)| match value {
                    Value::String(value) => Ok((key.clone(), value.clone())),
                    _ => Err(invalid()),
                })
                .collect(),
            Some(_) => Err(invalid()),
        }
    }

    /// `trialOverrideConfiguration`: `{isTrial, trialEndDate?, trialEndBehavior?}`.
    pub(crate) fn trial(&self, start_date: DateTime<Utc>) -> Result<Option<Trial>, Reply> {
        let Some(config) = self.get("trialOverrideConfiguration") else {
            return Ok(None);
        };
        let Value::Object(config) = config else {
            return Err(Reply::bad_input(
                "trialOverrideConfiguration must be an object",
            ));
        };
        let config = Fields(config);
        match config.get("isTrial") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => return Ok(None),
            _ => {
                return Err(Reply::bad_input(
                    "trialOverrideConfiguration.isTrial is required and must be a boolean",
                ));
            }
        }
        let end_date = config
            .optional_date("trialEndDate")?
            .unwrap_or(start_date + Duration::days(DEFAULT_TRIAL_DAYS));
        let end_behavior = match config.optional_str("trialEndBehavior")?.as_deref() {
            None | Some("CONVERT_TO_PAID") => "CONVERT_TO_PAID",
            Some("CANCEL_SUBSCRIPTION") => "CANCEL_SUBSCRIPTION",
            Some(_) => {
                return Err(Reply::bad_input(
                    "trialEndBehavior must be CONVERT_TO_PAID or CANCEL_SUBSCRIPTION",
                ));
            }
        };
        Ok(Some(Trial {
            end_date,
            end_behavior,
        }))
    }
}
