//! The result of a command that does one thing and prints one JSON object on standard
//! output (`provision`): what was done, or why not, and the exit status that goes with it.

use std::io::Write;
use std::process::ExitCode;

use onboarding_domain::model::CorrelationId;
use serde_json::Value;

use crate::failure::Failure;

/// What a one-shot command reports.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandOutcome {
    /// Done: the object to print; exit 0.
    Done(Value),
    /// Not done: printed in the HTTP API's error shape (`details` only when there are
    /// some), so that a script reads both alike; exit 1.
    Failed {
        failure: Failure,
        correlation_id: Option<CorrelationId>,
    },
}

impl CommandOutcome {
    /// The object printed.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Done(value) => value.clone(),
            Self::Failed {
                failure,
                correlation_id,
            } => serde_json::json!(
                failure.body(None, correlation_id.as_ref().map(CorrelationId::as_str))
            ),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Done(_) => ExitCode::SUCCESS,
            Self::Failed { .. } => ExitCode::FAILURE,
        }
    }

    /// Prints the object on standard output, one line; the exit status to end with.
    pub fn print(&self) -> std::io::Result<ExitCode> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", self.to_json())?;
        Ok(self.exit_code())
    }
}

#[cfg(test)]
mod tests {
    use onboarding_domain::input::FieldError;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_failure_prints_the_apis_error_shape_without_a_request_id() {
        let failed = CommandOutcome::Failed {
            failure: Failure::invalid(
                "arguments are invalid",
                vec![FieldError::new("planCode", "unknown plan code 'p'")],
            ),
            correlation_id: CorrelationId::parse("corr-1").ok(),
        };
        assert_eq!(
            failed.to_json().to_string(),
            r#"{"code":"BAD_REQUEST","correlationId":"corr-1","details":[{"field":"planCode","message":"unknown plan code 'p'"}],"message":"arguments are invalid","requestId":null}"#
        );
        assert_eq!(failed.exit_code(), ExitCode::FAILURE);
        let done = CommandOutcome::Done(json!({"provisioned": true}));
        assert_eq!(done.exit_code(), ExitCode::SUCCESS);
    }
}
