//! Lease-based leader election against the real API server.

use std::time::Duration;

use operator::leader::LeaseLock;
use test_support::kube_namespace;

#[tokio::test]
async fn one_holder_at_a_time_and_release_hands_over() {
    let ns = kube_namespace().await;
    let lock = |identity: &str| {
        LeaseLock::new(
            ns.client.clone(),
            &ns.name,
            "herald-operator",
            identity,
            Duration::from_secs(15),
        )
    };
    let (a, b) = (lock("replica-a"), lock("replica-b"));

    assert!(
        a.try_acquire_or_renew().await.unwrap(),
        "a takes the free lease"
    );
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "b must not take a held lease"
    );
    assert!(a.try_acquire_or_renew().await.unwrap(), "a renews");

    a.release().await.unwrap();
    assert!(
        b.try_acquire_or_renew().await.unwrap(),
        "b takes the released lease"
    );
    assert!(
        !a.try_acquire_or_renew().await.unwrap(),
        "a must not take it back while b holds it"
    );
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let ns = kube_namespace().await;
    let a = LeaseLock::new(
        ns.client.clone(),
        &ns.name,
        "herald-operator",
        "replica-a",
        Duration::from_secs(1),
    );
    let b = LeaseLock::new(
        ns.client.clone(),
        &ns.name,
        "herald-operator",
        "replica-b",
        Duration::from_secs(1),
    );
    assert!(a.try_acquire_or_renew().await.unwrap());
    // a stops renewing (crashed); once its lease has run out, b may take over.
    let mut taken = false;
    for _ in 0..40 {
        if b.try_acquire_or_renew().await.unwrap() {
            taken = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(taken, "b never took over the expired lease");
}
