//! `onboarding sync`: one JSON line per subscription, the exit code, and its refusal to run
//! without Stripe settings.

use serde_json::Value;

use super::{Sandbox, seed};

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

// Multi-threaded: blocking on a child process must not stall the emulator served here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_prints_one_line_per_subscription_and_fails_when_one_did_not_apply() {
    let sandbox = Sandbox::new().await;
    seed(&sandbox);
    // The bundled Stripe emulator holds the demo subscription, trialing; Stigg has nothing.
    let output = sandbox.run(&["sync", "--emulator", "sub_Demo1", "sub_bad-id"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output.stdout);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["stripeSubscriptionId"], "sub_Demo1");
    assert_eq!(lines[0]["status"], "applied", "{}", lines[0]);
    assert_eq!(lines[0]["moves"][0]["call"], "provision");
    assert_eq!(lines[1]["stripeSubscriptionId"], "sub_bad-id");
    assert_eq!(lines[1]["status"], "invalid");

    let dry = sandbox.run(&["sync", "--emulator", "--retry-failed", "--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert_eq!(
        json_lines(&dry.stdout),
        [serde_json::json!({"failed": 0, "dryRun": true})]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_refuses_to_run_without_stripe_settings() {
    let sandbox = Sandbox::new().await;
    let output = sandbox.run(&["sync", "sub_Demo1"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("onboarding: STRIPE_API_KEY is not set: `sync`")),
        "{stderr}"
    );
    let lonely_secret = sandbox
        .command(&["sync", "sub_Demo1"])
        .env("STRIPE_WEBHOOK_SECRET", "whsec_only")
        .output()
        .unwrap();
    assert_eq!(lonely_secret.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&lonely_secret.stderr)
            .contains("STRIPE_API_KEY is required when STRIPE_WEBHOOK_SECRET is set"),
        "{}",
        String::from_utf8_lossy(&lonely_secret.stderr)
    );
}
