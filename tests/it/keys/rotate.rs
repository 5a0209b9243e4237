//! Rotation: a new primary, old ciphertexts still open, audited.

use events::{Event, ProviderId, TenantId};
use std::os::unix::fs::PermissionsExt;

use switchboard::secrets::ops::{self, SYSTEM_TENANT};
use switchboard::secrets::MasterKeyring;

use super::{master_kid, open, seal, settings, stream, temp_dir};
use crate::support::TestEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_adds_a_version_and_old_ciphertexts_stay_readable() {
    let env = TestEnv::new().await;
    let (dir, pool) = (temp_dir(), env.pool.clone());
    let dev = settings(&env, &dir, &[]);
    assert!(
        ops::current_value(&dev).is_err(),
        "rotating never generates a keyring"
    );
    let old_value = secrecy::ExposeSecret::expose_secret(&dev.master_key().unwrap()).to_owned();
    let ring1 = || MasterKeyring::parse(&old_value).unwrap();
    let (ta, pa) = (TenantId::new(), ProviderId::new());
    let sealed_a = seal(&pool, ring1(), ta, pa).await;

    let done = ops::rotate(&dev, &pool, "alice").await.unwrap();
    assert_eq!(
        (done.kid.as_str(), done.kids.clone()),
        ("mk2", vec!["mk2".to_owned(), "mk1".to_owned()])
    );
    let path = dir.join("master_key");
    assert_eq!(done.written_to.as_deref(), Some(path.as_path()));
    assert!(done.new_value.is_none());
    let file = std::fs::read_to_string(&path).unwrap();
    assert!(
        file.starts_with("mk2:") && file.ends_with(&format!(",{old_value}")),
        "old entry kept"
    );
    assert!(
        !format!("{done:?}").contains(&file[4..20]),
        "Debug shows no key bytes"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary file left"
    );

    // The new ring (primary mk2, plus mk1) opens the old ciphertext...
    let ring2 = || ops::current_ring(&dev).unwrap();
    assert_eq!(ring2().kids(), ["mk2", "mk1"]);
    assert_eq!(
        open(&pool, ring2(), ta, pa, &sealed_a).await.unwrap(),
        format!("token-{pa}")
    );
    // ...and new tenant keys are wrapped under the new primary.
    let (tb, pb) = (TenantId::new(), ProviderId::new());
    let sealed_b = seal(&pool, ring2(), tb, pb).await;
    assert_eq!(master_kid(&pool, tb).await, "mk2");
    assert_eq!(
        master_kid(&pool, ta).await,
        "mk1",
        "rotation alone moves nothing"
    );
    assert!(open(&pool, ring2(), tb, pb, &sealed_b).await.is_ok());

    // Configured from the environment: the new value is returned, nothing changes.
    let configured = settings(&env, &dir, &["--master-key", &file]);
    let done = ops::rotate(&configured, &pool, "alice").await.unwrap();
    assert_eq!((done.kid.as_str(), done.written_to.clone()), ("mk3", None));
    let value = secrecy::ExposeSecret::expose_secret(done.new_value.as_ref().unwrap()).to_owned();
    assert_eq!(
        MasterKeyring::parse(&value).unwrap().kids(),
        ["mk3", "mk2", "mk1"]
    );
    assert!(value.ends_with(&format!(",{file}")));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        file,
        "file untouched"
    );
    // Production without a configured key is refused, and records nothing.
    let prod = settings(&env, &dir, &["--env", "production"]);
    assert!(ops::rotate(&prod, &pool, "alice").await.is_err());

    let system = stream(&pool, SYSTEM_TENANT.uuid()).await;
    let added: Vec<_> = system
        .iter()
        .map(|(s, e)| (s.envelope.actor.as_str(), s.envelope.tenant_id, e.clone()))
        .collect();
    let kid = |k: &str| Event::MasterKeyAdded(events::MasterKeyAdded { kid: k.into() });
    assert_eq!(
        added,
        [
            ("alice", TenantId::SYSTEM, kid("mk2")),
            ("alice", TenantId::SYSTEM, kid("mk3"))
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
    env.cleanup(None).await;
}
