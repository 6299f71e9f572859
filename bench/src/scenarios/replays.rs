//! Scenario c, replays: requests for subscriptions already provisioned (seeded so), answered
//! 200 from the database alone, against pgbench running the same lookups.

use super::Bench;
use super::lookup_ceiling::Lookup;
use super::service::Emulator;

impl Bench {
    pub(super) fn replays(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        let r = self.config.ranges();
        let lookup = Lookup {
            which: "c",
            title: "replay of a provisioned subscription",
            template: r#"{"orgId":"org_b{n}","stripeCustomerId":"cus_B{n}","stripeSubscriptionId":"sub_B{n}","planCode":"{plan}"}"#.to_owned(),
            first: r.replay.start,
            last: r.replay.end - 1,
            script: "lookup_replay.sql",
            logged: self.logged_provisioning(),
        };
        self.lookup(lookup, emulator)
    }
}
