//! Identifiers, parsed once at the edge so the rest of the code never re-checks them.
//!
//! Each type's rule is the contract's (`docs/api.md`); the error message is
//! written for the caller who sent the value.

use std::fmt;

use serde::Serialize;

/// Why a raw value is not a valid identifier. The message is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdError(pub String);

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses a raw value, keeping it only if it follows the contract's rule.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                $check(raw).map(|()| Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(raw: &str) -> Result<Self, IdError> {
                Self::parse(raw)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(raw: &str) -> Result<Self, IdError> {
                Self::parse(raw)
            }
        }
    };
}

id_type!(
    /// An organization id, `^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`. It is also the Stigg customer id.
    OrgId,
    check_org_id
);
id_type!(
    /// A Stripe customer id, `^cus_[A-Za-z0-9]{1,250}$`.
    StripeCustomerId,
    check_stripe_customer_id
);
id_type!(
    /// A Stripe subscription id, `^sub_[A-Za-z0-9]{1,250}$`. It is also the Stigg subscription id.
    StripeSubscriptionId,
    check_stripe_subscription_id
);
id_type!(
    /// A Stripe price id: 1–255 visible ASCII characters. Prices Stripe creates start with
    /// `price_`, but a legacy plan's id, which Stripe accepts wherever a price goes, is any
    /// string its author chose, so no prefix is required.
    StripePriceId,
    check_stripe_price_id
);
id_type!(
    /// A plan code of the catalog, `^[a-z0-9_]{1,64}$`.
    PlanCode,
    check_plan_code
);
id_type!(
    /// The caller's request id (`x-request-id`): 1–128 visible ASCII characters.
    RequestId,
    check_visible_ascii
);
id_type!(
    /// The id that ties together every call made for one business operation
    /// (`x-correlation-id`): 1–128 visible ASCII characters. It is passed on to Stigg.
    CorrelationId,
    check_visible_ascii
);
id_type!(
    /// The tenant an organization belongs to (`x-tenant-id`): 1–128 visible ASCII characters.
    TenantId,
    check_visible_ascii
);

pub(crate) const MAX_TRACE_ID_LEN: usize = 128;

const MAX_STRIPE_PRICE_ID_LEN: usize = 255;

fn check_visible_ascii(raw: &str) -> Result<(), IdError> {
    check_visible_ascii_up_to(raw, MAX_TRACE_ID_LEN)
}

fn check_stripe_price_id(raw: &str) -> Result<(), IdError> {
    check_visible_ascii_up_to(raw, MAX_STRIPE_PRICE_ID_LEN)
}

fn check_visible_ascii_up_to(raw: &str, max: usize) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError("must not be empty".into()));
    }
    if raw.len() > max {
        return Err(IdError(format!("must be at most {max} characters")));
    }
    if !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(IdError(
            "must contain only visible ASCII characters (no spaces or control characters)".into(),
        ));
    }
    Ok(())
}

fn check_org_id(raw: &str) -> Result<(), IdError> {
    const RULE: &str = "must start with a letter or digit, followed by at most 127 letters, digits, '_', '.' or '-'";
    let mut bytes = raw.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok && raw.len() <= 128 {
        Ok(())
    } else {
        Err(IdError(RULE.into()))
    }
}

fn check_prefixed_alnum(raw: &str, prefix: &str) -> Result<(), IdError> {
    let ok = raw.strip_prefix(prefix).is_some_and(|rest| {
        (1..=250).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if ok {
        Ok(())
    } else {
        Err(IdError(format!(
            "must be '{prefix}' followed by 1 to 250 letters or digits"
        )))
    }
}

fn check_stripe_customer_id(raw: &str) -> Result<(), IdError> {
    check_prefixed_alnum(raw, "cus_")
}

fn check_stripe_subscription_id(raw: &str) -> Result<(), IdError> {
    check_prefixed_alnum(raw, "sub_")
}

fn check_plan_code(raw: &str) -> Result<(), IdError> {
    let ok = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(IdError(
            "must be 1 to 64 lowercase letters, digits or '_'".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_id_follows_the_contract_rule() {
        for ok in ["o", "org_8Yp2", "A.b-c_d", &"a".repeat(128)] {
            assert!(OrgId::parse(ok).is_ok(), "{ok:?} should parse");
        }
        for bad in ["", "_org", ".x", "org 1", "org/1", "orgé", &"a".repeat(129)] {
            assert!(OrgId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn stripe_ids_need_their_prefix_and_alphanumerics() {
        assert!(StripeCustomerId::parse("cus_Q1w2E3").is_ok());
        assert!(StripeCustomerId::parse(&format!("cus_{}", "a".repeat(250))).is_ok());
        for bad in [
            "cus_",
            "cus_a-b",
            "sub_A1",
            "CUS_a1",
            &format!("cus_{}", "a".repeat(251)),
        ] {
            assert!(
                StripeCustomerId::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(StripeSubscriptionId::parse("sub_9Zx8Y7").is_ok());
        for bad in ["sub_", "cus_A1", "sub_a_b", "sub_ab "] {
            assert!(
                StripeSubscriptionId::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn plan_code_is_lowercase_snake() {
        assert!(PlanCode::parse("plan_starter_m").is_ok());
        assert!(PlanCode::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "Plan", "plan-x", &"a".repeat(65)] {
            assert!(PlanCode::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn stripe_price_ids_are_visible_ascii_up_to_255() {
        for ok in ["price_1Q2w3E", "gold-monthly", &"p".repeat(255)] {
            assert!(StripePriceId::parse(ok).is_ok(), "{ok:?} should parse");
        }
        for bad in ["", "price 1", "pricé", &"p".repeat(256)] {
            assert!(
                StripePriceId::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn trace_ids_are_visible_ascii_up_to_128() {
        assert!(RequestId::parse("req-1").is_ok());
        assert!(CorrelationId::parse(&"~".repeat(128)).is_ok());
        for bad in ["", "a b", "a\tb", "é", &"x".repeat(129)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
