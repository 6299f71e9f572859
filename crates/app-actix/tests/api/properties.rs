//! Properties of request parsing and validation: `parse_request` (the pure step the handler
//! runs) and the real server over HTTP.
//!
//! Requests are generated from the contract's rules (valid values from its regexes, near misses
//! and arbitrary bytes), and an independent oracle, those regexes compiled by the `regex` crate
//! and a plain reading of `config/plans.toml`, says which headers and fields must be named. The
//! server must answer 400 `BAD_REQUEST` naming exactly those, in order, or pass the request on
//! (404 here: nothing is seeded); it must never call Stigg for them and must write exactly one
//! debug-log row per request.
//!
//! The HTTP properties run a bounded number of cases against one server each (a few seconds);
//! `PROPTEST_CASES` raises every property's count for a longer local run.

use std::sync::LazyLock;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use onboarding_adapters_db::Backend;
use onboarding_app::config::BUILT_IN_PLAN_CATALOG as PLANS_TOML;
use onboarding_app::http::middleware::api::{MAX_BODY_BYTES, RequestHeaders};
use onboarding_app::http::routes::provision::parse_request;
use onboarding_app::redact::{MAX_LOGGED_BODY_BYTES, body_for_debug_log};
use onboarding_domain::model::PlanCatalog;
use proptest::prelude::*;
use proptest::string::string_regex;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use regex::Regex;
use serde_json::Value;

use crate::helpers::{NOT_SETTLING, TestApp, read, spawn_app_on};

// The contract's rules, word for word (docs/api.md).
const ORG_ID: &str = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$";
const STRIPE_CUSTOMER_ID: &str = r"^cus_[A-Za-z0-9]{1,250}$";
const STRIPE_SUBSCRIPTION_ID: &str = r"^sub_[A-Za-z0-9]{1,250}$";
const PLAN_CODE: &str = r"^[a-z0-9_]{1,64}$";
const TRACE_ID: &str = r"^[\x21-\x7E]{1,128}$";

/// The body's fields in the order the answer names them, with their rules.
const FIELDS: [(&str, &str); 4] = [
    ("orgId", ORG_ID),
    ("stripeCustomerId", STRIPE_CUSTOMER_ID),
    ("stripeSubscriptionId", STRIPE_SUBSCRIPTION_ID),
    ("planCode", PLAN_CODE),
];
/// The trace headers in the order the answer names them; only the tenant is optional.
const HEADERS: [(&str, bool); 3] = [
    ("x-request-id", true),
    ("x-correlation-id", true),
    ("x-tenant-id", false),
];

fn oracle(rule: &str) -> Regex {
    Regex::new(rule).expect("the field rule is a valid regex")
}

static FIELD_RULES: LazyLock<Vec<Regex>> =
    LazyLock::new(|| FIELDS.iter().map(|(_, rule)| oracle(rule)).collect());
/// On bytes: a header value need not be UTF-8.
static TRACE_RULE: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
    regex::bytes::Regex::new(TRACE_ID).expect("the trace-id rule is a valid regex")
});

/// The plan codes of the shipped catalog, read as plain TOML rather than through the
/// service's catalog loader.
static CATALOG_CODES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let file: toml::Table = toml::from_str(PLANS_TOML).expect("config/plans.toml is TOML");
    file.get("plans")
        .and_then(toml::Value::as_table)
        .map(|plans| plans.keys().cloned().collect())
        .unwrap_or_default()
});

fn catalog() -> PlanCatalog {
    onboarding_app::config::built_in_plan_catalog().expect("config/plans.toml is a valid catalog")
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// A runner without a regressions file: these properties live in a test module, not a crate
/// root, so proptest could not place one; a failure prints its minimal input instead.
fn runner(default_cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(default_cases),
        failure_persistence: None,
        ..Config::default()
    })
}

fn run<S: Strategy>(
    mut runner: TestRunner,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    if let Err(failure) = runner.run(&strategy, test) {
        panic!("{failure}");
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

fn regex_strategy(rule: &str) -> impl Strategy<Value = String> + use<> {
    string_regex(rule.trim_start_matches('^').trim_end_matches('$'))
        .expect("the field rule is a regex proptest can generate from")
}

/// Characters that tend to break hand-written checks.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec![
            '_', '.', '-', ' ', '\t', '\n', '\0', '~', '/', '"', '\\', 'A', 'z', '0', 'é', 'Ａ',
            '٣', '\u{200b}', '😀',
        ]),
        1 => any::<char>(),
    ]
}

/// A string around a rule: valid, one character off, at the length limits, or arbitrary.
fn around(rule: &'static str, prefix: &'static str, max: usize) -> BoxedStrategy<String> {
    let mutated = (
        regex_strategy(rule),
        any::<prop::sample::Index>(),
        tricky_char(),
    )
        .prop_map(|(value, at, c)| {
            let mut chars: Vec<char> = value.chars().collect();
            let i = at.index(chars.len() + 1);
            chars.insert(i, c);
            chars.into_iter().collect()
        });
    let at_the_limit = (
        prop::sample::select(vec![0, 1, max - 1, max, max + 1]),
        prop::sample::select(vec!['a', '7', '_', '~']),
    )
        .prop_map(move |(n, c)| format!("{prefix}{}", c.to_string().repeat(n)));
    prop_oneof![
        5 => regex_strategy(rule),
        2 => mutated,
        2 => at_the_limit,
        1 => any::<String>(),
    ]
    .boxed()
}

/// One body field as sent.
#[derive(Debug, Clone)]
enum FieldSpec {
    Absent,
    Null,
    Text(String),
    /// Any JSON value but a string or null: a number, a boolean, an array, an object.
    NotText(Value),
    /// Given twice (first another value, then this one): refused whatever the values.
    Repeated(Value, String),
}

fn not_text() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Array(vec![Value::from("org_1")])),
        Just(serde_json::json!({ "id": "org_1" })),
    ]
}

fn field_spec(index: usize) -> BoxedStrategy<FieldSpec> {
    let (name, rule) = FIELDS[index];
    let (prefix, max) = match name {
        "stripeCustomerId" => ("cus_", 250),
        "stripeSubscriptionId" => ("sub_", 250),
        "planCode" => ("", 64),
        _ => ("", 128),
    };
    let value = if name == "planCode" {
        prop_oneof![
            1 => around(rule, prefix, max),
            2 => prop::sample::select(CATALOG_CODES.clone()),
        ]
        .boxed()
    } else {
        around(rule, prefix, max)
    };
    prop_oneof![
        1 => Just(FieldSpec::Absent),
        1 => Just(FieldSpec::Null),
        12 => value.clone().prop_map(FieldSpec::Text),
        1 => not_text().prop_map(FieldSpec::NotText),
        1 => (any::<String>().prop_map(Value::from), value).prop_map(|(first, last)| FieldSpec::Repeated(first, last)),
    ]
    .boxed()
}

/// A field that follows its rule (the plan code: one of the catalog's).
fn valid_field(index: usize) -> BoxedStrategy<FieldSpec> {
    match FIELDS[index] {
        ("planCode", _) => prop::sample::select(CATALOG_CODES.clone())
            .prop_map(FieldSpec::Text)
            .boxed(),
        (_, rule) => regex_strategy(rule).prop_map(FieldSpec::Text).boxed(),
    }
}

/// The body as sent.
#[derive(Debug, Clone)]
enum BodySpec {
    /// A JSON object with the four fields (in any order) and unknown ones.
    Object {
        fields: Vec<(usize, FieldSpec)>,
        unknown: Vec<(String, Value)>,
    },
    /// Valid JSON that is not an object.
    NotObject(Value),
    /// Not JSON at all, or nothing (whitespace only).
    NotJson(String),
}

/// Names that look like the fields but are not them: unknown fields, ignored.
fn unknown_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_]{1,12}",
        prop::sample::select(vec![
            "OrgId",
            "orgid",
            "org_id",
            "planCode ",
            "PLANCODE",
            "apiKey"
        ])
        .prop_map(str::to_owned),
    ]
    .prop_filter("not one of the fields", |name| {
        !FIELDS.iter().any(|(field, _)| field == name)
    })
}

/// A body: a JSON object built from one strategy per field, or (when `shapes`) sometimes valid
/// JSON that is not an object, or not JSON at all.
fn body_spec(fields: [BoxedStrategy<FieldSpec>; 4], shapes: bool) -> BoxedStrategy<BodySpec> {
    let [a, b, c, d] = fields;
    let object = (
        (a, b, c, d),
        Just(vec![0usize, 1, 2, 3]).prop_shuffle(),
        prop::collection::vec(
            (unknown_name(), any::<String>().prop_map(Value::from)),
            0..3,
        ),
    )
        .prop_map(|((a, b, c, d), order, unknown)| {
            let mut specs = [Some(a), Some(b), Some(c), Some(d)];
            let fields = order
                .into_iter()
                .filter_map(|i| specs[i].take().map(|spec| (i, spec)))
                .collect();
            BodySpec::Object { fields, unknown }
        });
    if !shapes {
        return object.boxed();
    }
    prop_oneof![
        12 => object,
        1 => prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            Just(serde_json::json!([{ "orgId": "org_1" }])),
        ]
        .prop_map(BodySpec::NotObject),
        1 => prop_oneof![
            Just(String::new()),
            Just(" \n\t".to_owned()),
            Just(r#"{"orgId":"org_1""#.to_owned()),
            Just(r#"{"orgId":'org_1'}"#.to_owned()),
            Just("{\"orgId\":\"org_1\"} trailing".to_owned()),
            "[^{\\[\"0-9tfn \t\n-][a-z]{0,10}",
        ]
        .prop_map(BodySpec::NotJson),
    ]
    .boxed()
}

impl BodySpec {
    /// The body's bytes, written by hand so that a field can appear twice.
    fn render(&self) -> Vec<u8> {
        let json = |v: &Value| v.to_string();
        match self {
            Self::Object { fields, unknown } => {
                let mut entries = Vec::new();
                for (index, spec) in fields {
                    let name = json(&Value::from(FIELDS[*index].0));
                    match spec {
                        FieldSpec::Absent => {}
                        FieldSpec::Null => entries.push(format!("{name}:null")),
                        FieldSpec::Text(text) => {
                            entries.push(format!("{name}:{}", json(&Value::from(text.as_str()))));
                        }
                        FieldSpec::NotText(value) => {
                            entries.push(format!("{name}:{}", json(value)))
                        }
                        FieldSpec::Repeated(first, last) => {
                            entries.push(format!("{name}:{}", json(first)));
                            entries.push(format!("{name}:{}", json(&Value::from(last.as_str()))));
                        }
                    }
                }
                for (name, value) in unknown {
                    entries.push(format!(
                        "{}:{}",
                        json(&Value::from(name.as_str())),
                        json(value)
                    ));
                }
                format!("{{{}}}", entries.join(",")).into_bytes()
            }
            Self::NotObject(value) => json(value).into_bytes(),
            Self::NotJson(text) => text.clone().into_bytes(),
        }
    }

    /// The fields the contract says are wrong, in the answer's order.
    fn offending(&self) -> Vec<&'static str> {
        let Self::Object { fields, .. } = self else {
            return vec!["body"];
        };
        let mut offending: Vec<usize> = fields
            .iter()
            .filter(|(index, spec)| match spec {
                FieldSpec::Absent | FieldSpec::Null | FieldSpec::NotText(_) => true,
                FieldSpec::Repeated(..) => true,
                FieldSpec::Text(text) => {
                    !FIELD_RULES[*index].is_match(text)
                        || (FIELDS[*index].0 == "planCode" && !CATALOG_CODES.contains(text))
                }
            })
            .map(|(index, _)| *index)
            .collect();
        offending.sort_unstable();
        offending.into_iter().map(|i| FIELDS[i].0).collect()
    }
}

/// A value of a header, as bytes any HTTP client can send (no control characters but tab).
fn header_value() -> BoxedStrategy<Vec<u8>> {
    let valid = || regex_strategy(TRACE_ID).prop_map(String::into_bytes);
    prop_oneof![
        6 => valid(),
        1 => prop::sample::select(vec![127usize, 128, 129]).prop_map(|n| vec![b'~'; n]),
        1 => Just(Vec::new()),
        // Whitespace inside is wrong; around the value it is not part of it on the wire.
        1 => (valid(), prop::sample::select(vec![" ", "\t"]), any::<bool>()).prop_map(
            |(v, ws, inside)| {
                let v = String::from_utf8_lossy(&v).into_owned();
                if inside && v.len() > 1 {
                    format!("{}{ws}{}", &v[..1], &v[1..]).into_bytes()
                } else {
                    format!("{ws}{v}{ws}").into_bytes()
                }
            }
        ),
        // Not ASCII: UTF-8 or raw high bytes.
        1 => (valid(), prop_oneof![Just("é".as_bytes().to_vec()), Just(vec![0xff]), Just(vec![0x80, 0x80])])
            .prop_map(|(mut v, extra)| {
                v.extend(extra);
                v
            }),
        1 => prop::collection::vec(any::<u8>(), 0..160).prop_map(|bytes| {
            bytes
                .into_iter()
                .map(|b| if (b < 0x20 && b != b'\t') || b == 0x7f { b'x' } else { b })
                .collect()
        }),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum HeaderSpec {
    Missing,
    Once(Vec<u8>),
    Twice(Vec<u8>, Vec<u8>),
}

fn header_spec(optional: bool) -> impl Strategy<Value = HeaderSpec> {
    prop_oneof![
        if optional { 6 } else { 1 } => Just(HeaderSpec::Missing),
        12 => header_value().prop_map(HeaderSpec::Once),
        1 => (header_value(), header_value()).prop_map(|(a, b)| HeaderSpec::Twice(a, b)),
    ]
}

/// `Content-Type` values, and whether the service takes the body for JSON. No `Content-Type`
/// is taken as JSON: the contract asks callers for `application/json`, and refusing a body for
/// a missing label would gain nothing.
const CONTENT_TYPES: [(Option<&str>, bool); 8] = [
    (Some("application/json"), true),
    (Some("application/json; charset=utf-8"), true),
    (Some("Application/JSON"), true),
    (Some("application/merge-patch+json"), true),
    (None, false),
    (Some("text/plain"), false),
    (Some("application/x-www-form-urlencoded"), false),
    (Some("application/jsonx"), false),
];

#[derive(Debug, Clone)]
struct RequestCase {
    headers: [HeaderSpec; 3],
    content_type: usize,
    body: BodySpec,
    /// Unrelated headers, which must change nothing.
    others: Vec<(String, Vec<u8>)>,
}

/// Requests of three kinds: valid ones; valid but for one part (a header, the content type or
/// a field) drawn at random; and random in every part. Without the first two, nearly every
/// request would break several rules at once and the accepting side would go untested.
fn request_case() -> impl Strategy<Value = RequestCase> {
    prop_oneof![
        1 => case_with([false; 8]),
        3 => (0..8usize).prop_flat_map(|part| {
            let mut random = [false; 8];
            random[part] = true;
            case_with(random)
        }),
        3 => case_with([true; 8]),
    ]
}

/// A request whose parts (the three trace headers, the content type, the four fields) are
/// valid, or drawn at random where `random` says so.
fn case_with(random: [bool; 8]) -> BoxedStrategy<RequestCase> {
    let header = |i: usize, optional: bool| {
        if random[i] {
            header_spec(optional).boxed()
        } else {
            let valid = regex_strategy(TRACE_ID).prop_map(|v| HeaderSpec::Once(v.into_bytes()));
            if optional {
                prop_oneof![Just(HeaderSpec::Missing), valid].boxed()
            } else {
                valid.boxed()
            }
        }
    };
    let json_types: Vec<usize> = (0..CONTENT_TYPES.len())
        .filter(|i| CONTENT_TYPES[*i].1)
        .collect();
    let content_type = if random[3] {
        (0..CONTENT_TYPES.len()).boxed()
    } else {
        prop::sample::select(json_types).boxed()
    };
    let field = |i: usize| {
        if random[4 + i] {
            field_spec(i)
        } else {
            valid_field(i)
        }
    };
    let body = body_spec(
        [field(0), field(1), field(2), field(3)],
        random.iter().all(|r| *r),
    );
    (
        (header(0, false), header(1, false), header(2, true)),
        content_type,
        body,
        prop::collection::vec(("x-other-[a-z0-9]{1,8}", header_value()), 0..3),
    )
        .prop_map(|((r, c, t), content_type, body, others)| RequestCase {
            headers: [r, c, t],
            content_type,
            body,
            others,
        })
        .boxed()
}

/// What the oracle expects of a request case.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    fields: Vec<&'static str>,
    message: &'static str,
}

/// Leading and trailing spaces and tabs are not part of a header's value on the wire
/// (RFC 9110, section 5.5): the server never sees them.
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

impl RequestCase {
    /// The valid value of a trace header, as the server sees it.
    fn valid_header(&self, index: usize, over_the_wire: bool) -> Option<String> {
        match &self.headers[index] {
            HeaderSpec::Once(value) => {
                let value = if over_the_wire {
                    trim_ows(value)
                } else {
                    value
                };
                TRACE_RULE
                    .is_match(value)
                    .then(|| String::from_utf8_lossy(value).into_owned())
            }
            _ => None,
        }
    }

    fn expected(&self, over_the_wire: bool) -> Expected {
        let header_fields: Vec<&'static str> = HEADERS
            .iter()
            .enumerate()
            .filter(|(i, (_, required))| match &self.headers[*i] {
                HeaderSpec::Missing => *required,
                HeaderSpec::Twice(..) => true,
                HeaderSpec::Once(_) => self.valid_header(*i, over_the_wire).is_none(),
            })
            .map(|(_, (name, _))| *name)
            .collect();
        let body_fields = if CONTENT_TYPES[self.content_type].1 {
            self.body.offending()
        } else {
            vec!["content-type"]
        };
        let message = match (header_fields.is_empty(), body_fields.is_empty()) {
            (false, false) => "request headers and body are invalid",
            (false, true) => "request headers are invalid",
            _ => "request body is invalid",
        };
        Expected {
            fields: header_fields.into_iter().chain(body_fields).collect(),
            message,
        }
    }

    fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        let mut add = |name: &str, value: &[u8]| {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
            let value = HeaderValue::from_bytes(value).expect("a valid header value");
            map.append(name, value);
        };
        for (spec, (name, _)) in self.headers.iter().zip(HEADERS) {
            match spec {
                HeaderSpec::Missing => {}
                HeaderSpec::Once(value) => add(name, value),
                HeaderSpec::Twice(a, b) => {
                    add(name, a);
                    add(name, b);
                }
            }
        }
        if let Some(content_type) = CONTENT_TYPES[self.content_type].0 {
            add("content-type", content_type.as_bytes());
        }
        for (name, value) in &self.others {
            add(name, value);
        }
        map
    }
}

// ---------------------------------------------------------------------------------------------
// Pure properties: `parse_request`, as the handler runs it, on many cases.

#[test]
fn parse_request_accepts_exactly_what_the_contract_accepts() {
    let catalog = catalog();
    run(runner(1024), request_case(), |case| {
        let map = case.header_map();
        let headers = RequestHeaders::read(&map);
        let body = case.body.render();
        let expected = case.expected(false);
        match parse_request(&headers, map.get("content-type"), &body, &catalog) {
            Ok((request, context)) => {
                prop_assert!(
                    expected.fields.is_empty(),
                    "accepted, expected {expected:?}"
                );
                let BodySpec::Object { fields, .. } = &case.body else {
                    return Err(TestCaseError::fail("accepted a body that is not an object"));
                };
                let text = |i: usize| {
                    fields.iter().find_map(|(index, spec)| match spec {
                        FieldSpec::Text(text) if *index == i => Some(text.as_str()),
                        _ => None,
                    })
                };
                prop_assert_eq!(Some(request.org_id.as_str()), text(0));
                prop_assert_eq!(Some(request.stripe_customer_id.as_str()), text(1));
                prop_assert_eq!(Some(request.stripe_subscription_id.as_str()), text(2));
                prop_assert_eq!(Some(request.plan.code.as_str()), text(3));
                prop_assert_eq!(
                    Some(context.correlation_id.as_str().to_owned()),
                    case.valid_header(1, false)
                );
                prop_assert_eq!(
                    context.tenant_id.map(|t| t.as_str().to_owned()),
                    case.valid_header(2, false)
                );
            }
            Err(invalid) => {
                let named: Vec<&str> = invalid.details.iter().map(|d| d.field.as_str()).collect();
                prop_assert_eq!(
                    &named,
                    &expected.fields,
                    "{}",
                    String::from_utf8_lossy(&body)
                );
                prop_assert_eq!(invalid.message, expected.message);
                prop_assert!(invalid.details.iter().all(|d| !d.message.is_empty()));
            }
        }
        Ok(())
    });
}

/// Any header bytes a client can send and any body bytes: an answer, never a panic, and every
/// refusal names only headers and fields the contract knows. The debug-log copy of the body,
/// made for every request, stays within its 8 KiB.
#[test]
fn parse_request_never_panics_on_any_bytes() {
    let catalog = catalog();
    let known: Vec<&str> = HEADERS
        .iter()
        .map(|(name, _)| *name)
        .chain(["content-type", "body"])
        .chain(FIELDS.iter().map(|(name, _)| *name))
        .collect();
    let header = (
        prop_oneof![
            prop::sample::select(vec![
                "x-request-id",
                "x-correlation-id",
                "x-tenant-id",
                "content-type"
            ])
            .prop_map(|n| n.as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 1..20),
        ],
        prop::collection::vec(any::<u8>(), 0..200),
    );
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        // JSON-looking noise gets further into the parser than random bytes.
        prop::collection::vec(
            prop::sample::select(b"{}[]\":,0123456789.eE+-truefalsnul \\u\norgIdplanCode".to_vec()),
            0..512,
        ),
    ];
    let strategy = (prop::collection::vec(header, 0..6), body);
    run(runner(1024), strategy, |(pairs, body)| {
        let mut map = HeaderMap::new();
        for (name, value) in &pairs {
            // What an HTTP parser lets through; the rest never reaches the service.
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                map.append(name, value);
            }
        }
        let headers = RequestHeaders::read(&map);
        match parse_request(&headers, map.get("content-type"), &body, &catalog) {
            Ok((request, _)) => {
                // Whatever got through follows the rules.
                prop_assert!(FIELD_RULES[0].is_match(request.org_id.as_str()));
                prop_assert!(FIELD_RULES[1].is_match(request.stripe_customer_id.as_str()));
                prop_assert!(FIELD_RULES[2].is_match(request.stripe_subscription_id.as_str()));
                prop_assert!(
                    CATALOG_CODES
                        .iter()
                        .any(|c| c == request.plan.code.as_str())
                );
            }
            Err(invalid) => {
                prop_assert!(!invalid.details.is_empty());
                for detail in &invalid.details {
                    prop_assert!(known.contains(&detail.field.as_str()), "{detail:?}");
                }
            }
        }
        let logged = body_for_debug_log(&body);
        prop_assert!(logged.is_none_or(|l| l.len() <= MAX_LOGGED_BODY_BYTES));
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// HTTP properties: the real server (SQLite, the Stigg emulator), one request per case.

/// A runtime of its own: proptest's runner is synchronous, so each case blocks on its request
/// while the server runs on the runtime's workers.
fn with_server<S: Strategy>(
    default_cases: u32,
    strategy: S,
    check: impl AsyncFn(&TestApp, S::Value) -> Result<(), TestCaseError>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let app = runtime.block_on(spawn_app_on(Backend::Sqlite));
    run(runner(default_cases), strategy, |case| {
        runtime.block_on(check(&app, case))
    });
    // Nothing was seeded and nothing may reach Stigg, whatever the request.
    assert!(app.stigg.emulator().requests().is_empty());
}

/// The answer's status, its echoed `x-request-id` and `x-correlation-id`, and its body.
async fn send(app: &TestApp, case: &RequestCase) -> (u16, [Option<String>; 2], Value) {
    let mut request = app
        .client
        .post(format!("{}/api/stigg/provision", app.address))
        .body(case.body.render());
    for (name, value) in case.header_map().iter() {
        request = request.header(name.as_str(), value.as_bytes());
    }
    let response = request.send().await.expect("the service answers");
    let echoed = ["x-request-id", "x-correlation-id"].map(|name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let content_type = response.headers().get("content-type").cloned();
    let (status, body) = read(response).await;
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{status} {body}"
    );
    (status, echoed, body)
}

/// The debug-log rows so far, and the status and code of the last one.
async fn last_debug_row(app: &TestApp) -> (i64, i64, i64) {
    let rows = app.debug_log_count_where("TRUE").await;
    let status = app
        .count(&format!(
            "SELECT status AS n FROM debug_logs WHERE {NOT_SETTLING} ORDER BY id DESC LIMIT 1"
        ))
        .await;
    let bad_request = app
        .count(&format!(
            "SELECT count(*) AS n FROM debug_logs
             WHERE id = (SELECT max(id) FROM debug_logs WHERE {NOT_SETTLING})
               AND error_code = 'BAD_REQUEST'"
        ))
        .await;
    (rows, status, bad_request)
}

#[test]
fn http_refusals_are_400_naming_exactly_the_offending_fields() {
    with_server(192, request_case(), async |app, case| {
        let rows_before = app.debug_log_count_where("TRUE").await;
        let (status, echoed, body) = send(app, &case).await;
        let expected = case.expected(true);
        let request_id = case.valid_header(0, true);

        if expected.fields.is_empty() {
            // Valid: looked up, and no organization is seeded.
            prop_assert_eq!(status, 404, "{}", body);
            prop_assert_eq!(&body["code"], "NOT_FOUND");
        } else {
            prop_assert_eq!(status, 400, "{}", body);
            prop_assert_eq!(&body["code"], "BAD_REQUEST");
            prop_assert_eq!(&body["message"], expected.message);
            let named: Vec<&str> = body["details"]
                .as_array()
                .map(|d| d.iter().filter_map(|d| d["field"].as_str()).collect())
                .unwrap_or_default();
            prop_assert_eq!(named, expected.fields, "{}", body);
        }
        prop_assert_eq!(
            &body["requestId"],
            &request_id.clone().map_or(Value::Null, Value::from)
        );
        let correlation_id = case.valid_header(1, true);
        prop_assert_eq!(
            &body["correlationId"],
            &correlation_id.clone().map_or(Value::Null, Value::from)
        );
        // Valid ids come back as headers on every answer, refusals included.
        prop_assert_eq!(echoed, [request_id, correlation_id]);

        let (rows, last_status, bad_request) = last_debug_row(app).await;
        prop_assert_eq!(rows, rows_before + 1, "one debug-log row per request");
        prop_assert_eq!(last_status, i64::from(status));
        prop_assert_eq!(bad_request, i64::from(status == 400));
        prop_assert!(
            app.stigg.emulator().requests().is_empty(),
            "Stigg was called"
        );
        Ok(())
    });
}

/// Arbitrary body bytes, up to past the size cap, with valid trace headers.
#[test]
fn http_any_body_bytes_get_a_json_error_and_one_debug_row() {
    let bodies = prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..1024),
        1 => prop::collection::vec(any::<u8>(), MAX_BODY_BYTES - 8..MAX_BODY_BYTES + 8),
        1 => prop::collection::vec(any::<u8>(), MAX_BODY_BYTES..MAX_BODY_BYTES + 4096),
    ];
    let strategy = (bodies, 0..CONTENT_TYPES.len());
    with_server(96, strategy, async |app, (bytes, content_type)| {
        let rows_before = app.debug_log_count_where("TRUE").await;
        let mut request = app
            .client
            .post(format!("{}/api/stigg/provision", app.address))
            .header("x-request-id", "req-bytes")
            .header("x-correlation-id", "corr-bytes")
            .body(bytes.clone());
        if let Some(content_type) = CONTENT_TYPES[content_type].0 {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("the service answers");
        let (status, body) = read(response).await;
        if bytes.len() > MAX_BODY_BYTES {
            prop_assert_eq!(status, 413, "{}", body);
            prop_assert_eq!(&body["code"], "PAYLOAD_TOO_LARGE");
        } else {
            // Random bytes are never a valid request; at worst `{}` or the like.
            prop_assert_eq!(status, 400, "{}", body);
            prop_assert_eq!(&body["code"], "BAD_REQUEST");
            prop_assert!(body["details"].as_array().is_some_and(|d| !d.is_empty()));
        }
        prop_assert_eq!(&body["requestId"], "req-bytes");
        let (rows, last_status, _) = last_debug_row(app).await;
        prop_assert_eq!(rows, rows_before + 1, "one debug-log row per request");
        prop_assert_eq!(last_status, i64::from(status));
        Ok(())
    });
}
