//! Rewrap: every live key moves to the newest master key, audited.

use events::{Event, ProviderId, TenantId};
use switchboard::secrets::ops;
use switchboard::secrets::{MasterKeyring, SecretError};

use super::{open, seal, settings, stream, temp_dir};
use crate::support::TestEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrap_moves_every_tenant_key_to_the_newest_version() {
    let env = TestEnv::new().await;
    let (dir, pool) = (temp_dir(), env.pool.clone());
    let dev = settings(&env, &dir, &[]);
    let old_value = secrecy::ExposeSecret::expose_secret(&dev.master_key().unwrap()).to_owned();
    let ring1 = || MasterKeyring::parse(&old_value).unwrap();
    let tenants: Vec<(TenantId, ProviderId)> = (0..3)
        .map(|_| (TenantId::new(), ProviderId::new()))
        .collect();
    let mut sealed = Vec::new();
    for (i, (t, p)) in tenants.iter().enumerate() {
        if i == 2 {
            ops::rotate(&dev, &pool, "alice").await.unwrap();
        }
        sealed.push(seal(&pool, ops::current_ring(&dev).unwrap(), *t, *p).await);
    }
    let before = chrono::Utc::now();
    let ring2 = ops::current_ring(&dev).unwrap();
    let report = ops::rewrap(&pool, &ring2, "bob").await.unwrap();
    let after = chrono::Utc::now();
    assert_eq!(report.master_kid, "mk2");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let mut moved: Vec<TenantId> = report.moved.iter().map(|m| m.tenant_id).collect();
    moved.sort();
    let mut expected = vec![tenants[0].0, tenants[1].0];
    expected.sort();
    assert_eq!(
        moved, expected,
        "the two keys under mk1 moved; the mk2 one stayed"
    );
    let kids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT master_kid FROM tenant_keys")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(kids, ["mk2"]);

    // A ring without the old master key opens everything.
    let file = std::fs::read_to_string(dev.data_dir.join("master_key")).unwrap();
    let newest_only = || MasterKeyring::parse(file.split(',').next().unwrap()).unwrap();
    assert_eq!(newest_only().kids(), ["mk2"]);
    for ((t, p), s) in tenants.iter().zip(&sealed) {
        assert_eq!(
            open(&pool, newest_only(), *t, *p, s).await.unwrap(),
            format!("token-{p}")
        );
    }
    assert!(matches!(
        open(&pool, ring1(), tenants[0].0, tenants[0].1, &sealed[0]).await,
        Err(SecretError::UnknownMasterKid(_))
    ));

    // The audit trail: who, when, which key, under which kid.
    let events = stream(&pool, tenants[0].0.uuid()).await;
    let (last, event) = events.last().unwrap();
    let Event::TenantKeyRewrapped(e) = event else {
        panic!("{event:?}")
    };
    assert_eq!(
        (e.key_id.as_str(), e.master_kid.as_str()),
        (sealed[0].key_id.as_str(), "mk2")
    );
    assert_eq!(last.envelope.actor, "bob");
    let at = last.envelope.recorded_at;
    assert!(
        at >= before - chrono::Duration::seconds(1) && at <= after + chrono::Duration::seconds(1)
    );
    assert!(stream(&pool, tenants[2].0.uuid())
        .await
        .iter()
        .all(|(_, e)| !matches!(e, Event::TenantKeyRewrapped(_))));

    // Re-running moves nothing; a key under a kid the ring lacks is reported.
    assert!(ops::rewrap(&pool, &ring2, "bob")
        .await
        .unwrap()
        .moved
        .is_empty());
    let (td, pd) = (TenantId::new(), ProviderId::new());
    seal(&pool, ring1(), td, pd).await;
    let report = ops::rewrap(&pool, &newest_only(), "bob").await.unwrap();
    assert!(report.moved.is_empty());
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].tenant_id, td);
    assert!(matches!(&report.failed[0].error, SecretError::UnknownMasterKid(k) if k == "mk1"));
    assert_eq!(
        stream(&pool, td.uuid()).await.len(),
        1,
        "no event for a key that did not move"
    );
    let _ = std::fs::remove_dir_all(&dir);
    env.cleanup(None).await;
}
