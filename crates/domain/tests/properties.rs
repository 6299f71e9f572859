//! Properties of the parsed ids and of `ProvisionRequest::parse`, checked against an
//! independent oracle: the contract's regexes (`docs/api.md`) compiled by the
//! `regex` crate. The hand-written checks in `model/ids.rs` must accept exactly what the
//! regexes accept, for valid values generated from the regexes, for near misses of them and for
//! arbitrary Unicode.
//!
//! `PROPTEST_CASES` raises the number of cases for a longer local run.

// clippy.toml's allow-*-in-tests reaches only #[test] functions, not this crate's helpers;
// in a test, a set-up step that fails should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::LazyLock;

use onboarding_domain::input::Field;
use onboarding_domain::model::{
    BillingPeriod, CorrelationId, OrgId, Plan, PlanCatalog, PlanCode, RequestId, StripeCustomerId,
    StripeSubscriptionId, TenantId,
};
use onboarding_domain::use_cases::provision_subscription::{ProvisionRequest, RawProvisionRequest};
use proptest::prelude::*;
use proptest::string::string_regex;
use regex::Regex;

// The contract's rules, word for word.
const ORG_ID: &str = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$";
const STRIPE_CUSTOMER_ID: &str = r"^cus_[A-Za-z0-9]{1,250}$";
const STRIPE_SUBSCRIPTION_ID: &str = r"^sub_[A-Za-z0-9]{1,250}$";
const PLAN_CODE: &str = r"^[a-z0-9_]{1,64}$";
const TRACE_ID: &str = r"^[\x21-\x7E]{1,128}$";

/// The plan codes of the catalog the request properties parse against.
const CATALOG: [&str; 2] = ["plan_starter_m", "plan_pro_y"];

fn oracle(rule: &'static str) -> Regex {
    Regex::new(rule).unwrap_or_else(|e| panic!("{rule}: {e}"))
}

static ORACLES: LazyLock<[Regex; 5]> = LazyLock::new(|| {
    [
        ORG_ID,
        STRIPE_CUSTOMER_ID,
        STRIPE_SUBSCRIPTION_ID,
        PLAN_CODE,
        TRACE_ID,
    ]
    .map(oracle)
});

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512)
}

/// Characters that tend to break hand-written checks: separators the rules allow in one place
/// and not another, whitespace and controls, non-ASCII letters and digits (which
/// `char::is_alphanumeric` would wrongly accept), and invisible ones.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec![
            '_', '.', '-', ' ', '\t', '\n', '\r', '\0', '\u{7f}', '~', '!', '/', 'A', 'z', '0',
            '9', 'é', 'ß', 'İ', 'Ａ', '٣', '\u{200b}', '\u{feff}', '😀',
        ]),
        1 => any::<char>(),
    ]
}

/// Values around a rule: valid ones generated from it, the same with one character inserted,
/// replaced or removed, values at its length limits (`prefix` then 0, 1, 2, `max - 1`, `max`
/// or `max + 1` characters), longer ones, and arbitrary strings.
fn around(rule: &'static str, prefix: &'static str, max: usize) -> impl Strategy<Value = String> {
    let valid = || {
        string_regex(rule.trim_start_matches('^').trim_end_matches('$'))
            .unwrap_or_else(|e| panic!("{rule}: {e}"))
    };
    let mutated = (valid(), any::<prop::sample::Index>(), tricky_char(), 0..4u8).prop_map(
        |(value, at, c, how)| {
            let mut chars: Vec<char> = value.chars().collect();
            let i = at.index(chars.len() + 1);
            match how {
                0 => chars.insert(i, c),
                1 if i < chars.len() => chars[i] = c,
                2 if i < chars.len() => {
                    chars.remove(i);
                }
                // Past every limit: the value repeated beyond 256 characters.
                _ => {
                    let copy = chars.clone();
                    while chars.len() <= 256 {
                        chars.extend_from_slice(&copy);
                        chars.push('a');
                    }
                }
            }
            chars.into_iter().collect()
        },
    );
    let lengths = prop::sample::select(vec![0, 1, 2, max - 1, max, max + 1]);
    let fill = prop::sample::select(vec!['a', 'Z', '7', '_', '.', '~']);
    let at_the_limit =
        (lengths, fill).prop_map(move |(n, c)| format!("{prefix}{}", c.to_string().repeat(n)));
    prop_oneof![
        3 => valid(),
        3 => mutated,
        2 => at_the_limit,
        1 => any::<String>(),
        1 => string_regex(r"[\x00-\x7f]{0,300}").unwrap(),
    ]
}

fn catalog() -> PlanCatalog {
    PlanCatalog::new(CATALOG.map(|code| Plan {
        code: PlanCode::parse(code).unwrap(),
        stigg_plan_id: format!("stigg-{code}"),
        billing_period: BillingPeriod::Monthly,
    }))
    .unwrap()
}

/// One raw field, as an edge may hand it over.
#[derive(Debug, Clone)]
enum RawField {
    Missing,
    Invalid(String),
    Value(String),
}

impl RawField {
    fn as_field(&self) -> Field<'_> {
        match self {
            Self::Missing => Field::Missing,
            Self::Invalid(message) => Field::Invalid(message.clone()),
            Self::Value(value) => Field::Value(value),
        }
    }
}

fn raw_field(
    rule: &'static str,
    prefix: &'static str,
    max: usize,
) -> impl Strategy<Value = RawField> {
    prop_oneof![
        1 => Just(RawField::Missing),
        1 => "[a-z ]{1,20}".prop_map(RawField::Invalid),
        6 => around(rule, prefix, max).prop_map(RawField::Value),
    ]
}

fn plan_code_field() -> impl Strategy<Value = RawField> {
    prop_oneof![
        3 => raw_field(PLAN_CODE, "", 64),
        2 => prop::sample::select(CATALOG.to_vec()).prop_map(|c| RawField::Value(c.to_owned())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn org_id_accepts_exactly_the_contracts_values(raw in around(ORG_ID, "", 128)) {
        let parsed = OrgId::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), ORACLES[0].is_match(&raw), "{:?}", raw);
        if let Ok(id) = parsed {
            prop_assert_eq!(id.as_str(), raw.as_str());
        }
    }

    #[test]
    fn stripe_customer_id_accepts_exactly_the_contracts_values(raw in around(STRIPE_CUSTOMER_ID, "cus_", 250)) {
        let parsed = StripeCustomerId::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), ORACLES[1].is_match(&raw), "{:?}", raw);
        if let Ok(id) = parsed {
            prop_assert_eq!(id.as_str(), raw.as_str());
        }
    }

    #[test]
    fn stripe_subscription_id_accepts_exactly_the_contracts_values(
        raw in around(STRIPE_SUBSCRIPTION_ID, "sub_", 250),
    ) {
        let parsed = StripeSubscriptionId::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), ORACLES[2].is_match(&raw), "{:?}", raw);
        if let Ok(id) = parsed {
            prop_assert_eq!(id.as_str(), raw.as_str());
        }
    }

    #[test]
    fn plan_code_accepts_exactly_the_contracts_values(raw in around(PLAN_CODE, "", 64)) {
        let parsed = PlanCode::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), ORACLES[3].is_match(&raw), "{:?}", raw);
        if let Ok(code) = parsed {
            prop_assert_eq!(code.as_str(), raw.as_str());
        }
    }

    /// The three trace headers share one rule.
    #[test]
    fn trace_ids_accept_exactly_the_contracts_values(raw in around(TRACE_ID, "", 128)) {
        let expected = ORACLES[4].is_match(&raw);
        prop_assert_eq!(RequestId::parse(&raw).is_ok(), expected, "{:?}", raw);
        prop_assert_eq!(CorrelationId::parse(&raw).is_ok(), expected, "{:?}", raw);
        prop_assert_eq!(TenantId::parse(&raw).is_ok(), expected, "{:?}", raw);
    }

    /// `ProvisionRequest::parse` accepts exactly the requests whose four fields all follow
    /// their rules (the plan code also being in the catalog), and otherwise names every
    /// offending field once, in the contract's order, with a message.
    #[test]
    fn provision_request_names_exactly_the_offending_fields(
        org_id in raw_field(ORG_ID, "", 128),
        stripe_customer_id in raw_field(STRIPE_CUSTOMER_ID, "cus_", 250),
        stripe_subscription_id in raw_field(STRIPE_SUBSCRIPTION_ID, "sub_", 250),
        plan_code in plan_code_field(),
    ) {
        let raw = RawProvisionRequest {
            org_id: org_id.as_field(),
            stripe_customer_id: stripe_customer_id.as_field(),
            stripe_subscription_id: stripe_subscription_id.as_field(),
            plan_code: plan_code.as_field(),
        };
        let fields = [
            ("orgId", &org_id, &ORACLES[0]),
            ("stripeCustomerId", &stripe_customer_id, &ORACLES[1]),
            ("stripeSubscriptionId", &stripe_subscription_id, &ORACLES[2]),
            ("planCode", &plan_code, &ORACLES[3]),
        ];
        let offending: Vec<&str> = fields
            .iter()
            .filter(|(name, field, rule)| match field {
                RawField::Missing | RawField::Invalid(_) => true,
                RawField::Value(v) => {
                    !rule.is_match(v) || (*name == "planCode" && !CATALOG.contains(&v.as_str()))
                }
            })
            .map(|(name, _, _)| *name)
            .collect();

        match ProvisionRequest::parse(&raw, &catalog()) {
            Ok(request) => {
                prop_assert!(offending.is_empty(), "accepted, but {:?} break the rules", offending);
                let values = fields.map(|(_, field, _)| match field {
                    RawField::Value(v) => v.as_str(),
                    _ => "",
                });
                prop_assert_eq!(request.org_id.as_str(), values[0]);
                prop_assert_eq!(request.stripe_customer_id.as_str(), values[1]);
                prop_assert_eq!(request.stripe_subscription_id.as_str(), values[2]);
                prop_assert_eq!(request.plan.code.as_str(), values[3]);
                prop_assert_eq!(&request.plan.stigg_plan_id, &format!("stigg-{}", values[3]));
            }
            Err(errors) => {
                let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                prop_assert_eq!(&named, &offending);
                for (error, (_, field, _)) in errors.iter().zip(fields.iter().filter(|(n, _, _)| named.contains(n))) {
                    let expected = match field {
                        RawField::Missing => Some("is required"),
                        RawField::Invalid(message) => Some(message.as_str()),
                        RawField::Value(_) => None,
                    };
                    match expected {
                        Some(message) => prop_assert_eq!(error.message.as_str(), message),
                        None => prop_assert!(!error.message.is_empty()),
                    }
                }
            }
        }
    }
}
