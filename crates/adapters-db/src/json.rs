//! What the sync keeps as JSON text: an event's move records (`stripe_events.moves`). A
//! stored value that does not parse back is a data error naming its column.

use onboarding_domain::model::MoveRecord;
use onboarding_domain::ports::RepoError;

const MOVES_COLUMN: &str = "stripe_events.moves";

/// `moves` as stored.
pub(crate) fn moves_to_json(moves: &[MoveRecord]) -> Result<String, RepoError> {
    serde_json::to_string(moves).map_err(|e| unwritable(MOVES_COLUMN, &e))
}

/// Stored moves; none before the event was settled (NULL).
pub(crate) fn moves_from_json(raw: Option<&str>) -> Result<Vec<MoveRecord>, RepoError> {
    raw.map_or_else(
        || Ok(Vec::new()),
        |raw| serde_json::from_str(raw).map_err(|e| invalid(MOVES_COLUMN, format!("JSON: {e}"))),
    )
}

/// A stored value the domain cannot accept. The value itself is not repeated: it may be long.
fn invalid(column: &str, why: String) -> RepoError {
    RepoError::Unexpected(format!("{column} holds an invalid {why}"))
}

fn unwritable(column: &str, error: &serde_json::Error) -> RepoError {
    RepoError::Unexpected(format!("cannot write {column} as JSON: {error}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{DateTime, TimeZone, Utc};

    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, 10, 30, 0).unwrap()
    }

    #[test]
    fn moves_read_back_and_null_is_none() {
        let moves = vec![MoveRecord {
            call: "cancel_subscription".into(),
            stigg_id: "sub_1".into(),
            at: at(3),
        }];
        let stored = moves_to_json(&moves).unwrap();
        assert_eq!(moves_from_json(Some(&stored)).unwrap(), moves);
        assert_eq!(moves_from_json(None).unwrap(), []);
        assert!(moves_from_json(Some("{")).is_err());
    }
}
