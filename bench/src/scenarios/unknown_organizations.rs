//! Scenario b, unknown organizations: random ids that are not seeded, answered 404, against
//! pgbench running the same lookups.

use super::Bench;
use super::lookup_ceiling::Lookup;
use super::pgbench_scripts::LoggedRequest;
use super::service::Emulator;

impl Bench {
    pub(super) fn unknown_organizations(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        let n1 = self.n(1);
        let lookup = Lookup {
            which: "b",
            title: "404 unknown organization",
            template: format!(
                r#"{{"orgId":"org_x{{n}}","stripeCustomerId":"cus_X{{n}}","stripeSubscriptionId":"sub_X{{n}}","planCode":"{}"}}"#,
                self.plans[0]
            ),
            first: 1,
            last: self.config.orgs,
            script: "lookup_unknown_org.sql",
            logged: LoggedRequest {
                body: format!(
                    r#"{{"orgId":"org_x{n1}","planCode":"{}","stripeCustomerId":"cus_X{n1}","stripeSubscriptionId":"sub_X{n1}"}}"#,
                    self.plans[0]
                ),
                status: "404",
                code: Some("NOT_FOUND"),
            },
        };
        self.lookup(lookup, emulator)
    }
}
