//! The plan catalog: plan code → Stigg plan id and billing period, read from `PLAN_CATALOG`,
//! or the copy built into the binary (the one place `config/plans.toml` is embedded).

use std::path::Path;

use anyhow::Context;
use onboarding_domain::model::{BillingPeriod, Plan, PlanCatalog, PlanCode, StripePriceId};
use serde::Deserialize;

use super::Settings;

/// The default path of the plan catalog; when it is not there the built-in copy is used.
pub const DEFAULT_PLAN_CATALOG: &str = "config/plans.toml";

/// The catalog shipped in the binary, so the service starts from any working directory; its
/// only copy (tests and the fuzz target read it from here).
pub const BUILT_IN_PLAN_CATALOG: &str = include_str!("../../../../config/plans.toml");

/// The catalog shipped in the binary (`config/plans.toml`).
pub fn built_in_plan_catalog() -> anyhow::Result<PlanCatalog> {
    parse_plan_catalog(BUILT_IN_PLAN_CATALOG)
}

impl Settings {
    /// Loads the plan catalog. An explicitly configured file must exist; the default path
    /// falls back to the copy built into the binary.
    pub fn load_plan_catalog(&self) -> anyhow::Result<PlanCatalog> {
        let path = &self.plan_catalog;
        let (text, origin) = match std::fs::read_to_string(path) {
            Ok(text) => (text, path.display().to_string()),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && path == Path::new(DEFAULT_PLAN_CATALOG) =>
            {
                (
                    BUILT_IN_PLAN_CATALOG.to_owned(),
                    "the built-in catalog".to_owned(),
                )
            }
            Err(e) => anyhow::bail!("PLAN_CATALOG: cannot read {}: {e}", path.display()),
        };
        parse_plan_catalog(&text)
            .with_context(|| format!("PLAN_CATALOG: invalid catalog in {origin}"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    plans: std::collections::BTreeMap<String, CatalogEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogEntry {
    stigg_plan_id: String,
    billing_period: CatalogPeriod,
    /// The Stripe prices that stand for this plan (the lifecycle sync reads a subscription's
    /// plan from its price); a price's lookup key equal to the code works without listing it.
    #[serde(default)]
    stripe_price_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum CatalogPeriod {
    Monthly,
    Annually,
}

/// A catalog in the format of `config/plans.toml`.
pub fn parse_plan_catalog(text: &str) -> anyhow::Result<PlanCatalog> {
    let file: CatalogFile = toml::from_str(text)?;
    let mut prices = Vec::new();
    let plans = file
        .plans
        .into_iter()
        .map(|(code, entry)| {
            let code =
                PlanCode::parse(&code).map_err(|e| anyhow::anyhow!("plan code '{code}' {e}"))?;
            let price_ids = entry
                .stripe_price_ids
                .iter()
                .map(|raw| {
                    StripePriceId::parse(raw).map_err(|e| {
                        anyhow::anyhow!("plan code '{code}': stripe_price_ids: '{raw}' {e}")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            prices.push((code.clone(), price_ids));
            Ok(Plan {
                code,
                stigg_plan_id: entry.stigg_plan_id,
                billing_period: match entry.billing_period {
                    CatalogPeriod::Monthly => BillingPeriod::Monthly,
                    CatalogPeriod::Annually => BillingPeriod::Annually,
                },
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(PlanCatalog::new(plans)?.with_stripe_prices(prices)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalog_has_the_contracts_plans() {
        let catalog = parse_plan_catalog(BUILT_IN_PLAN_CATALOG).unwrap();
        for code in [
            "plan_starter_m",
            "plan_starter_y",
            "plan_pro_m",
            "plan_pro_y",
        ] {
            let code = PlanCode::parse(code).unwrap();
            assert!(catalog.get(&code).is_some(), "{code} missing");
        }
    }

    #[test]
    fn stripe_prices_name_their_plan() {
        use onboarding_domain::model::StripePrice;
        let catalog = parse_plan_catalog(
            "[plans.a]\nstigg_plan_id = 'x'\nbilling_period = 'MONTHLY'\nstripe_price_ids = ['price_a1', 'price_a2']\n\
             [plans.b]\nstigg_plan_id = 'y'\nbilling_period = 'ANNUALLY'\n",
        )
        .unwrap();
        let price = |id: &str, lookup_key: Option<&str>| StripePrice {
            id: StripePriceId::parse(id).unwrap(),
            lookup_key: lookup_key.map(str::to_owned),
        };
        let plan_of = |p: StripePrice| catalog.plan_for_price(&p).map(|plan| plan.code.to_string());
        assert_eq!(plan_of(price("price_a2", None)).as_deref(), Some("a"));
        assert_eq!(plan_of(price("price_z", Some("b"))).as_deref(), Some("b"));
        assert_eq!(plan_of(price("price_z", None)), None);
        let error = parse_plan_catalog(
            "[plans.a]\nstigg_plan_id = 'x'\nbilling_period = 'MONTHLY'\nstripe_price_ids = ['p1']\n\
             [plans.b]\nstigg_plan_id = 'y'\nbilling_period = 'MONTHLY'\nstripe_price_ids = ['p1']\n",
        )
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
        assert!(error.contains("p1"), "{error}");
    }

    #[test]
    fn a_bad_catalog_says_what_is_wrong() {
        let error =
            parse_plan_catalog("[plans.Bad]\nstigg_plan_id = 'x'\nbilling_period = 'MONTHLY'\n")
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
        assert!(error.contains("plan code 'Bad'"), "{error}");
        let error =
            parse_plan_catalog("[plans.a]\nstigg_plan_id = 'x'\nbilling_period = 'WEEKLY'\n")
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
        assert!(
            error.contains("WEEKLY") || error.contains("variant"),
            "{error}"
        );
    }
}
