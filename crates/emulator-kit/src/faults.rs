use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Which requests a scripted fault hits: the method and the path prefix (an unset one matches
/// everything), and how many more times. In an admin route's JSON its fields sit beside the
/// fault's `action`: `{"method": "POST", "pathPrefix": "/api/v1/customers", "times": 2, …}`,
/// `times` defaulting to 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultScope {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path_prefix: Option<String>,
    #[serde(default = "once")]
    pub times: u32,
}

fn once() -> u32 {
    1
}

impl Default for FaultScope {
    fn default() -> Self {
        Self {
            method: None,
            path_prefix: None,
            times: once(),
        }
    }
}

impl FaultScope {
    /// Why a fault with this scope cannot be queued, if it cannot: one that hits nothing.
    pub fn problem(&self) -> Option<String> {
        (self.times == 0).then(|| "times must be at least 1".to_owned())
    }

    /// Whether a request with this method (case-insensitive) and path is hit.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|wanted| wanted.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|prefix| path.starts_with(prefix))
    }
}

/// Why a fault cannot answer with `status`, if it cannot: only real HTTP statuses are sent.
pub fn status_problem(status: u16) -> Option<String> {
    (!(200..=599).contains(&status)).then(|| format!("status {status} is not between 200 and 599"))
}

/// A fault narrowed by its [`FaultScope`]: the builder methods the emulators' faults share
/// (bring the trait into scope to call them).
pub trait Scoped: Sized {
    fn scope_mut(&mut self) -> &mut FaultScope;

    /// Only requests with this method (case-insensitive).
    fn on_method(mut self, method: impl Into<String>) -> Self {
        self.scope_mut().method = Some(method.into());
        self
    }

    /// Only requests whose path starts with `prefix`.
    fn on_path(mut self, prefix: impl Into<String>) -> Self {
        self.scope_mut().path_prefix = Some(prefix.into());
        self
    }

    /// Apply to this many matching requests.
    fn times(mut self, times: u32) -> Self {
        self.scope_mut().times = times;
        self
    }
}

/// Takes one use of the first fault `matches` accepts and returns it, dropping the fault once
/// `times` says it is used up. Faults are used in the order they were queued.
pub fn take_first<T: Clone>(
    faults: &mut VecDeque<T>,
    matches: impl Fn(&T) -> bool,
    times: impl Fn(&mut T) -> &mut u32,
) -> Option<T> {
    let index = faults.iter().position(matches)?;
    let fault = faults.get_mut(index)?;
    let taken = fault.clone();
    let left = times(fault);
    *left = left.saturating_sub(1);
    if *left == 0 {
        faults.remove(index);
    }
    Some(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_matches_its_method_and_prefix_and_nothing_else() {
        let scope = FaultScope {
            method: Some("post".into()),
            path_prefix: Some("/api/v1/customers".into()),
            times: 1,
        };
        assert!(scope.matches("POST", "/api/v1/customers/org_1"));
        assert!(!scope.matches("GET", "/api/v1/customers"));
        assert!(!scope.matches("POST", "/api/v1/subscriptions"));
        assert!(FaultScope::default().matches("DELETE", "/anything"));
    }

    #[test]
    fn faults_are_used_in_order_and_dropped_when_used_up() {
        let mut faults: VecDeque<(char, u32)> = VecDeque::from([('a', 2), ('b', 1)]);
        let take = |faults: &mut VecDeque<(char, u32)>, wanted: char| {
            take_first(faults, |f| f.0 == wanted, |f| &mut f.1).map(|f| f.0)
        };
        assert_eq!(take(&mut faults, 'b'), Some('b'));
        assert_eq!(take(&mut faults, 'b'), None, "used up");
        assert_eq!(take(&mut faults, 'a'), Some('a'));
        assert_eq!(take(&mut faults, 'a'), Some('a'));
        assert!(faults.is_empty());
    }

    #[test]
    fn a_scope_reads_its_fields_from_the_fault_json_with_times_defaulting_to_one() {
        #[derive(Deserialize)]
        struct Fault {
            #[serde(flatten)]
            scope: FaultScope,
            #[allow(dead_code)]
            action: String,
        }
        let fault: Fault =
            serde_json::from_str(r#"{"pathPrefix": "/v1/events", "action": "x"}"#).unwrap();
        assert_eq!(fault.scope.path_prefix.as_deref(), Some("/v1/events"));
        assert_eq!(fault.scope.times, 1);
    }
}
