//! One contract, two back ends: every test here runs against SQLite and against a real
//! PostgreSQL server.

use aerie_db::{
    Actor, AuditQuery, CertificationStep, Database, DbError, Installation, InstallationStatus,
    NewEvent, NewSpaceToken, NewToken, NewVersion, PublishOutcome, Role, SpaceChange, SpaceRole,
    StateQuota, installation_scope,
};

/// A fresh SQLite database in a temporary directory, kept alive with the database, with
/// plugins' state in a file of its own as the server keeps it.
async fn sqlite() -> (Database, Option<tempfile::TempDir>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aerie.db").display());
    let state = format!("sqlite://{}", dir.path().join("plugin-state.db").display());
    let database = Database::connect(&url)
        .await
        .unwrap()
        .with_separate_plugin_state(&state)
        .await
        .unwrap();
    (database, Some(dir))
}

#[tokio::test]
async fn state_kept_in_the_metadata_file_moves_to_its_own_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aerie.db").display());
    let state = format!("sqlite://{}", dir.path().join("plugin-state.db").display());
    let before = Database::connect(&url).await.unwrap();
    for key in ["a", "b"] {
        before
            .state_set(
                "space:1/acme/x",
                "default",
                key,
                b"kept",
                StateQuota::UNLIMITED,
            )
            .await
            .unwrap();
    }
    before.close().await;
    let after = Database::connect(&url)
        .await
        .unwrap()
        .with_separate_plugin_state(&state)
        .await
        .unwrap();
    assert_eq!(
        after
            .state_get("space:1/acme/x", "default", "b")
            .await
            .unwrap(),
        Some(b"kept".to_vec())
    );
    assert_eq!(
        after.state_usage("space:1/acme/x").await.unwrap(),
        aerie_db::StateUsage { keys: 2, bytes: 10 }
    );
    // Once the file has state, nothing is copied again.
    after
        .state_delete("space:1/acme/x", "default", "a")
        .await
        .unwrap();
    after.close().await;
    let again = Database::connect(&url)
        .await
        .unwrap()
        .with_separate_plugin_state(&state)
        .await
        .unwrap();
    assert_eq!(
        again
            .state_get("space:1/acme/x", "default", "a")
            .await
            .unwrap(),
        None
    );
}

async fn postgres() -> (Database, Option<tempfile::TempDir>) {
    let url = aerie_test_support::postgres().fresh_database();
    (Database::connect(&url).await.unwrap(), None)
}

/// Runs each named test against both back ends.
macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (database, _dir) = super::sqlite().await;
                    super::$test(database).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (database, _dir) = super::postgres().await;
                    super::$test(database).await;
                }
            )*
        }
    };
}

contract!(
    users_are_listed_by_name_prefix_in_pages,
    plugin_state_is_scoped_and_pages_in_key_order,
    plugin_state_counts_against_its_spaces_quota,
    concurrent_increments_lose_no_update,
    user_names_are_unique,
    sessions_expire_and_end,
    tokens_are_found_by_hash_and_revoked,
    namespaces_keep_at_least_one_owner,
    keys_are_registered_once_and_revoked,
    publishing_the_same_bytes_twice_returns_the_existing_version,
    other_bytes_for_a_published_version_conflict,
    concurrent_publishes_of_one_version_create_it_once,
    yank_and_deprecate_change_only_their_flags,
    downloads_add_up_per_day,
    every_change_writes_an_audit_row,
    spaces_have_unique_names_and_keep_an_owner,
    space_tokens_are_found_by_hash_and_revoked,
    a_members_tokens_go_with_their_membership,
    a_space_change_lands_whole_with_events_and_audit,
    secrets_are_set_replaced_and_removed_per_installation,
    deleting_a_space_deletes_everything_in_it,
    master_key_rotation_rewraps_every_space,
    the_catalogue_change_log_orders_publishes_and_yanks,
    the_catalogue_is_read_in_pages_of_plugins,
    a_certification_step_lands_only_from_the_state_seen,
    publish_buckets_empty_and_refill_and_concurrent_takes_lose_none,
    failed_logins_are_audited,
    owners_demoting_each_other_at_once_leave_an_owner,
);

async fn owners_demoting_each_other_at_once_leave_an_owner(database: Database) {
    let (ada, bob) = (user(&database, "ada").await, user(&database, "bob").await);
    let space = database
        .create_space(&actor(ada), "team", ada, "key1", b"w")
        .await
        .unwrap();
    let namespace = database
        .create_namespace(&actor(ada), "acme", ada, false, false)
        .await
        .unwrap();
    let (as_ada, as_bob) = (actor(ada), actor(bob));
    for round in 0..10 {
        database
            .set_space_member(&actor(ada), &space, bob, Some(SpaceRole::Owner))
            .await
            .unwrap();
        database
            .set_space_member(&actor(ada), &space, ada, Some(SpaceRole::Owner))
            .await
            .unwrap();
        database
            .set_member(&actor(ada), &namespace, bob, Some(Role::Owner))
            .await
            .unwrap();
        database
            .set_member(&actor(ada), &namespace, ada, Some(Role::Owner))
            .await
            .unwrap();
        // Each removes the other at the same moment: one of them must be refused.
        let (first, second, third, fourth) = tokio::join!(
            database.set_space_member(&as_ada, &space, bob, None),
            database.set_space_member(&as_bob, &space, ada, None),
            database.set_member(&as_ada, &namespace, bob, Some(Role::Maintainer)),
            database.set_member(&as_bob, &namespace, ada, Some(Role::Maintainer)),
        );
        assert_eq!(
            [first.is_ok(), second.is_ok()]
                .iter()
                .filter(|ok| **ok)
                .count(),
            1,
            "round {round}: {first:?} {second:?}"
        );
        assert_eq!(
            [third.is_ok(), fourth.is_ok()]
                .iter()
                .filter(|ok| **ok)
                .count(),
            1,
            "round {round}: {third:?} {fourth:?}"
        );
        let owners = database.space_members(space.id).await.unwrap();
        assert_eq!(
            owners
                .iter()
                .filter(|(_, role)| *role == SpaceRole::Owner)
                .count(),
            1,
            "round {round}: {owners:?}"
        );
        let members = database.members(namespace.id).await.unwrap();
        assert_eq!(
            members
                .iter()
                .filter(|(_, role)| *role == Role::Owner)
                .count(),
            1,
            "round {round}: {members:?}"
        );
    }
}

fn actor(user_id: i64) -> Actor {
    Actor {
        user_id: Some(user_id),
        token_id: None,
        ip: Some("127.0.0.1".into()),
    }
}

async fn user(database: &Database, name: &str) -> i64 {
    database
        .create_user(&Actor::system(), name, None, "$argon2id$fake", false)
        .await
        .unwrap()
        .id
}

fn new_version(namespace_id: i64, version: &str, digest: &str, publisher_id: i64) -> NewVersion {
    NewVersion {
        namespace_id,
        namespace: "acme".into(),
        name: "hello".into(),
        version: version.into(),
        digest: digest.into(),
        size: 1234,
        manifest: "{}".into(),
        readme: Some("# Hello".into()),
        changelog: Some("## 1.0\n- First".into()),
        signature: None,
        signing_key_id: None,
        publisher_id,
    }
}

async fn users_are_listed_by_name_prefix_in_pages(database: Database) {
    for name in ["adele", "bob", "ada", "adam"] {
        user(&database, name).await;
    }
    let names = |users: Vec<aerie_db::User>| -> Vec<String> {
        users.into_iter().map(|user| user.username).collect()
    };
    assert_eq!(
        names(database.users("ad", "", 2).await.unwrap()),
        ["ada", "adam"]
    );
    assert_eq!(
        names(database.users("ad", "adam", 2).await.unwrap()),
        ["adele"]
    );
    assert_eq!(names(database.users("b", "", 10).await.unwrap()), ["bob"]);
    assert_eq!(database.users("", "", 10).await.unwrap().len(), 4);
    assert!(database.users("x", "", 10).await.unwrap().is_empty());
}

async fn user_names_are_unique(database: Database) {
    let ada = database
        .create_user(
            &Actor::system(),
            "ada",
            Some("ada@example.com"),
            "hash",
            true,
        )
        .await
        .unwrap();
    assert!(ada.is_admin);
    let err = database
        .create_user(&Actor::system(), "ada", None, "other", false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DbError::Conflict(ref message) if message == "the user name `ada` is taken"),
        "{err}"
    );
    assert_eq!(database.user_by_name("ada").await.unwrap(), Some(ada));
    assert_eq!(database.user_by_name("bob").await.unwrap(), None);
    assert_eq!(database.count_users().await.unwrap(), 1);
}

async fn sessions_expire_and_end(database: Database) {
    let ada = user(&database, "ada").await;
    let far = aerie_db::now_millis() + 60_000;
    let origin = aerie_db::SessionOrigin {
        ip: Some("192.0.2.1".into()),
        user_agent: Some("test".into()),
    };
    database
        .create_session(ada, b"live", far, &origin)
        .await
        .unwrap();
    database
        .create_session(ada, b"stale", 1, &origin)
        .await
        .unwrap();
    database
        .create_session(ada, b"other", far, &origin)
        .await
        .unwrap();
    let (live, user) = database.session_user(b"live").await.unwrap().unwrap();
    assert_eq!(user.id, ada);
    assert_eq!(
        database
            .session_user_by_id(live)
            .await
            .unwrap()
            .map(|user| user.id),
        Some(ada)
    );
    assert_eq!(database.session_user(b"stale").await.unwrap(), None);
    assert_eq!(database.session_user(b"unknown").await.unwrap(), None);
    let sessions = database.sessions_of(ada).await.unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert!(sessions.iter().all(|session| session.origin == origin));
    database.delete_session(b"live").await.unwrap();
    assert_eq!(database.session_user(b"live").await.unwrap(), None);
    assert_eq!(database.session_user_by_id(live).await.unwrap(), None);
    // Signing out everywhere ends the rest; a password change ends all but the one kept.
    database
        .create_session(ada, b"third", far, &origin)
        .await
        .unwrap();
    let (third, _) = database.session_user(b"third").await.unwrap().unwrap();
    assert_eq!(
        database
            .end_sessions(&actor(ada), ada, None, Some(third))
            .await
            .unwrap(),
        1
    );
    assert_eq!(database.session_user(b"other").await.unwrap(), None);
    database
        .create_session(ada, b"fourth", far, &origin)
        .await
        .unwrap();
    database
        .change_password(&actor(ada), ada, "new-hash", Some(third))
        .await
        .unwrap();
    assert_eq!(database.session_user(b"fourth").await.unwrap(), None);
    let (_, user) = database.session_user(b"third").await.unwrap().unwrap();
    assert_eq!(user.password_hash, "new-hash");
}

async fn tokens_are_found_by_hash_and_revoked(database: Database) {
    let ada = user(&database, "ada").await;
    let bob = user(&database, "bob").await;
    let token = NewToken {
        user_id: ada,
        name: "ci".into(),
        hash: vec![1; 32],
        prefix: "aerie_ab".into(),
        scopes: vec!["publish".into(), "yank".into()],
        namespaces: Some(vec!["acme".into()]),
        expires_at: Some(42),
    };
    let created = database.create_token(&actor(ada), &token).await.unwrap();
    let err = database
        .create_token(
            &actor(ada),
            &NewToken {
                hash: vec![2; 32],
                ..token.clone()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Conflict(_)), "{err}");
    let (found, owner) = database.token_by_hash(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(found, created);
    assert_eq!(found.scopes, ["publish", "yank"]);
    assert_eq!(found.namespaces.as_deref(), Some(&["acme".to_string()][..]));
    assert_eq!(owner.username, "ada");
    database.touch_token(&found).await.unwrap();
    let (touched, _) = database.token_by_hash(&[1; 32]).await.unwrap().unwrap();
    assert!(touched.last_used_at.is_some());
    // Only the owner can revoke it.
    let err = database
        .revoke_token(&actor(bob), bob, created.id)
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::NotFound("token")), "{err}");
    database
        .revoke_token(&actor(ada), ada, created.id)
        .await
        .unwrap();
    let tokens = database.tokens_of(ada).await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].revoked_at.is_some());
    assert!(database.tokens_of(bob).await.unwrap().is_empty());
}

async fn namespaces_keep_at_least_one_owner(database: Database) {
    let ada = user(&database, "ada").await;
    let bob = user(&database, "bob").await;
    let acme = database
        .create_namespace(&actor(ada), "acme", ada, true, false)
        .await
        .unwrap();
    let err = database
        .create_namespace(&actor(bob), "acme", bob, true, false)
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Conflict(_)), "{err}");
    assert_eq!(
        database.role_in(acme.id, ada).await.unwrap(),
        Some(Role::Owner)
    );
    assert_eq!(database.role_in(acme.id, bob).await.unwrap(), None);
    let err = database
        .set_member(&actor(ada), &acme, ada, Some(Role::Maintainer))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DbError::Conflict(ref m) if m == "the namespace `acme` needs at least one owner"),
        "{err}"
    );
    database
        .set_member(&actor(ada), &acme, bob, Some(Role::Owner))
        .await
        .unwrap();
    database
        .set_member(&actor(bob), &acme, ada, Some(Role::Maintainer))
        .await
        .unwrap();
    assert_eq!(
        database.members(acme.id).await.unwrap(),
        [
            ("bob".to_string(), Role::Owner),
            ("ada".to_string(), Role::Maintainer)
        ]
    );
    database
        .set_member(&actor(bob), &acme, ada, None)
        .await
        .unwrap();
    assert_eq!(database.role_in(acme.id, ada).await.unwrap(), None);
    let listed = database.namespaces_of(bob).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1, Role::Owner);
    database
        .update_namespace(&actor(bob), &acme, false, true)
        .await
        .unwrap();
    let updated = database.namespace("acme").await.unwrap().unwrap();
    assert!(!updated.require_signature);
    assert!(updated.private);
}

async fn keys_are_registered_once_and_revoked(database: Database) {
    let ada = user(&database, "ada").await;
    let acme = database
        .create_namespace(&actor(ada), "acme", ada, true, false)
        .await
        .unwrap();
    database
        .add_key(&actor(ada), &acme, "0123456789ABCDEF", "RWQ...", ada)
        .await
        .unwrap();
    let err = database
        .add_key(&actor(ada), &acme, "0123456789ABCDEF", "RWQ...", ada)
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Conflict(_)), "{err}");
    database
        .revoke_key(&actor(ada), &acme, "0123456789ABCDEF")
        .await
        .unwrap();
    let keys = database.keys(acme.id).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].added_by, "ada");
    assert!(keys[0].revoked_at.is_some());
    let err = database
        .revoke_key(&actor(ada), &acme, "FFFF")
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::NotFound("key")), "{err}");
}

async fn publishing_the_same_bytes_twice_returns_the_existing_version(database: Database) {
    let ada = user(&database, "ada").await;
    let acme = database
        .create_namespace(&actor(ada), "acme", ada, false, false)
        .await
        .unwrap();
    let created = match database
        .publish_version(
            &actor(ada),
            &new_version(acme.id, "1.0.0", "sha256:aa", ada),
        )
        .await
        .unwrap()
    {
        PublishOutcome::Created(record) => record,
        other => panic!("{other:?}"),
    };
    assert_eq!(created.namespace, "acme");
    assert_eq!(created.publisher, "ada");
    assert_eq!(created.readme.as_deref(), Some("# Hello"));
    assert_eq!(created.changelog.as_deref(), Some("## 1.0\n- First"));
    let again = database
        .publish_version(
            &actor(ada),
            &new_version(acme.id, "1.0.0", "sha256:aa", ada),
        )
        .await
        .unwrap();
    assert_eq!(again, PublishOutcome::Existing(created.clone()));
    assert_eq!(
        database.version_by_digest("sha256:aa").await.unwrap(),
        Some(created)
    );
    let plugin = database.plugin("acme", "hello").await.unwrap().unwrap();
    assert_eq!(plugin.downloads, 0);
    assert_eq!(database.plugins_in(acme.id).await.unwrap(), ["hello"]);
    assert_eq!(database.plugins_in(acme.id).await.unwrap(), ["hello"]);
}

async fn other_bytes_for_a_published_version_conflict(database: Database) {
    let ada = user(&database, "ada").await;
    let acme = database
        .create_namespace(&actor(ada), "acme", ada, false, false)
        .await
        .unwrap();
    database
        .publish_version(
            &actor(ada),
            &new_version(acme.id, "1.0.0", "sha256:aa", ada),
        )
        .await
        .unwrap();
    let err = database
        .publish_version(
            &actor(ada),
            &new_version(acme.id, "1.0.0", "sha256:bb", ada),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DbError::Conflict(ref m) if m.contains("versions are immutable")),
        "{err}"
    );
    let versions = database.versions("acme", "hello").await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].digest, "sha256:aa");
}

async fn concurrent_publishes_of_one_version_create_it_once(database: Database) {
    let ada = user(&database, "ada").await;
    let acme = database
        .create_namespace(&actor(ada), "acme", ada, false, false)
        .await
        .unwrap();
    let attempts: Vec<_> = (0..16)
        .map(|i| {
            let database = database.clone();
            // Half the racers bring the same bytes, half other bytes.
            let digest = if i % 2 == 0 { "sha256:aa" } else { "sha256:bb" };
            let new = new_version(acme.id, "2.0.0", digest, ada);
            tokio::spawn(async move { database.publish_version(&actor(ada), &new).await })
        })
        .collect();
    let mut created = Vec::new();
    let mut existing = 0;
    let mut conflicts = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(PublishOutcome::Created(record)) => created.push(record),
            Ok(PublishOutcome::Existing(_)) => existing += 1,
            Err(DbError::Conflict(_)) => conflicts += 1,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one publish wins");
    // The 7 other racers with the winner's bytes get it back; the 8 with other bytes conflict.
    assert_eq!((existing, conflicts), (7, 8));
    assert_eq!(database.versions("acme", "hello").await.unwrap(), created);
}

async fn yank_and_deprecate_change_only_their_flags(database: Database) {
    let ada = user(&database, "ada").await;
    let acme = database
        .create_namespace(&actor(ada), "acme", ada, false, false)
        .await
        .unwrap();
    database
        .publish_version(
            &actor(ada),
            &new_version(acme.id, "1.0.0", "sha256:aa", ada),
        )
        .await
        .unwrap();
    let version = database
        .version("acme", "hello", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    database
        .set_yanked(&actor(ada), &version, true)
        .await
        .unwrap();
    database
        .set_deprecated(&actor(ada), &version, Some("use 2.x"))
        .await
        .unwrap();
    let changed = database
        .version("acme", "hello", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    assert!(changed.yanked);
    assert_eq!(changed.deprecated.as_deref(), Some("use 2.x"));
    assert_eq!(changed.digest, version.digest);
    database
        .set_yanked(&actor(ada), &version, false)
        .await
        .unwrap();
    database
        .set_deprecated(&actor(ada), &version, None)
        .await
        .unwrap();
    let restored = database
        .version("acme", "hello", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restored, version);
}

async fn downloads_add_up_per_day(database: Database) {
    let ada = user(&database, "ada").await;
    let acme = database
        .create_namespace(&actor(ada), "acme", ada, false, false)
        .await
        .unwrap();
    for (version, digest) in [("1.0.0", "sha256:aa"), ("1.1.0", "sha256:bb")] {
        database
            .publish_version(&actor(ada), &new_version(acme.id, version, digest, ada))
            .await
            .unwrap();
    }
    let one = database
        .version("acme", "hello", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    let two = database
        .version("acme", "hello", "1.1.0")
        .await
        .unwrap()
        .unwrap();
    database
        .add_downloads(&[(one.id, 20000, 3), (two.id, 20000, 1)])
        .await
        .unwrap();
    database
        .add_downloads(&[(one.id, 20000, 2), (one.id, 20001, 5)])
        .await
        .unwrap();
    let days: Vec<(i64, String, i64)> = database
        .downloads(one.plugin_id)
        .await
        .unwrap()
        .into_iter()
        .map(|day| (day.day, day.version, day.count))
        .collect();
    assert_eq!(
        days,
        [
            (20000, "1.0.0".to_string(), 5),
            (20000, "1.1.0".to_string(), 1),
            (20001, "1.0.0".to_string(), 5)
        ]
    );
    assert_eq!(
        database
            .plugin("acme", "hello")
            .await
            .unwrap()
            .unwrap()
            .downloads,
        11
    );
    let mut digests = database.referenced_digests().await.unwrap();
    digests.sort();
    assert_eq!(digests, ["sha256:aa", "sha256:bb"]);
}

async fn every_change_writes_an_audit_row(database: Database) {
    let ada = user(&database, "ada").await;
    let acme = database
        .create_namespace(&actor(ada), "acme", ada, false, false)
        .await
        .unwrap();
    database
        .publish_version(
            &actor(ada),
            &new_version(acme.id, "1.0.0", "sha256:aa", ada),
        )
        .await
        .unwrap();
    let version = database
        .version("acme", "hello", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    database
        .set_yanked(&actor(ada), &version, true)
        .await
        .unwrap();
    let all = database
        .audit_entries(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = all.iter().map(|entry| entry.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "version.yank",
            "version.publish",
            "namespace.create",
            "user.create"
        ]
    );
    assert_eq!(all[0].actor.as_deref(), Some("ada"));
    assert_eq!(all[0].ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(all[0].target, "plugin:acme/hello@1.0.0");
    assert_eq!(all[1].details["digest"], "sha256:aa");
    let filtered = database
        .audit_entries(&AuditQuery {
            target_prefix: Some("plugin:acme/".into()),
            action: Some("version.publish".into()),
            before_id: None,
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(filtered.len(), 1);
    // By who acted, and by when.
    let by = |actor: &str, since: Option<i64>, until: Option<i64>| AuditQuery {
        actor: Some(actor.into()),
        since,
        until,
        limit: 10,
        ..AuditQuery::default()
    };
    let at = all[0].at;
    let count = |entries: Vec<aerie_db::AuditEntry>| entries.len();
    assert_eq!(
        count(
            database
                .audit_entries(&by("ada", None, None))
                .await
                .unwrap()
        ),
        all.iter()
            .filter(|entry| entry.actor.as_deref() == Some("ada"))
            .count()
    );
    assert_eq!(
        count(
            database
                .audit_entries(&by("nobody", None, None))
                .await
                .unwrap()
        ),
        0
    );
    assert!(
        count(
            database
                .audit_entries(&by("ada", Some(at), None))
                .await
                .unwrap()
        ) >= 1
    );
    assert_eq!(
        count(
            database
                .audit_entries(&by("ada", Some(at + 1), None))
                .await
                .unwrap()
        ),
        0
    );
    assert_eq!(
        count(
            database
                .audit_entries(&by(
                    "ada",
                    None,
                    Some(all.iter().map(|entry| entry.at).min().unwrap())
                ))
                .await
                .unwrap()
        ),
        0
    );
    let paged = database
        .audit_entries(&AuditQuery {
            before_id: Some(all[1].id),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(paged.len(), 2);
    // A failed change leaves no row.
    let _ = database
        .create_namespace(&actor(ada), "acme", ada, false, false)
        .await
        .unwrap_err();
    let after = database
        .audit_entries(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(after.len(), all.len());
}

async fn plugin_state_is_scoped_and_pages_in_key_order(database: Database) {
    assert_eq!(database.state_get("a", "default", "k").await.unwrap(), None);
    database
        .state_set("a", "default", "k", b"one", StateQuota::UNLIMITED)
        .await
        .unwrap();
    database
        .state_set("a", "default", "k", b"two", StateQuota::UNLIMITED)
        .await
        .unwrap();
    database
        .state_set("b", "default", "k", b"other", StateQuota::UNLIMITED)
        .await
        .unwrap();
    database
        .state_set("a", "other", "k", b"bucket", StateQuota::UNLIMITED)
        .await
        .unwrap();
    assert_eq!(
        database.state_get("a", "default", "k").await.unwrap(),
        Some(b"two".to_vec())
    );
    for key in ["b", "Z", "a", "_", "aa"] {
        database
            .state_set("a", "list", key, b"", StateQuota::UNLIMITED)
            .await
            .unwrap();
    }
    let first = database.state_keys("a", "list", 0, 3).await.unwrap();
    // Bytewise order on both back ends.
    assert_eq!(first.keys, ["Z", "_", "a"]);
    assert!(first.more);
    let rest = database.state_keys("a", "list", 3, 3).await.unwrap();
    assert_eq!(rest.keys, ["aa", "b"]);
    assert!(!rest.more);

    assert_eq!(
        database
            .state_increment("a", "c", "n", 2, StateQuota::UNLIMITED)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        database
            .state_increment("a", "c", "n", 3, StateQuota::UNLIMITED)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        database.state_get("a", "c", "n").await.unwrap(),
        Some(b"5".to_vec())
    );
    let not_a_counter = database
        .state_increment("a", "default", "k", 1, StateQuota::UNLIMITED)
        .await;
    assert!(
        matches!(not_a_counter, Err(DbError::Conflict(_))),
        "{not_a_counter:?}"
    );

    database.state_delete("a", "default", "k").await.unwrap();
    database
        .state_delete("a", "default", "absent")
        .await
        .unwrap();
    assert_eq!(database.state_get("a", "default", "k").await.unwrap(), None);
    assert_eq!(database.state_clear("a").await.unwrap(), 7);
    // Scopes without a `/` each count as their own space here; "a" holds nothing now.
    assert_eq!(
        database.state_usage("a").await.unwrap(),
        aerie_db::StateUsage::default()
    );
    assert_eq!(
        database.state_get("b", "default", "k").await.unwrap(),
        Some(b"other".to_vec())
    );
}

async fn concurrent_increments_lose_no_update(database: Database) {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let database = database.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    database
                        .state_increment("s", "b", "hits", 1, StateQuota::UNLIMITED)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        database.state_get("s", "b", "hits").await.unwrap(),
        Some(b"80".to_vec())
    );
}

async fn spaces_have_unique_names_and_keep_an_owner(database: Database) {
    let ada = user(&database, "ada").await;
    let bob = user(&database, "bob").await;
    let space = database
        .create_space(&actor(ada), "team", ada, "key1", b"wrapped")
        .await
        .unwrap();
    assert_eq!(space.wrapped_key, b"wrapped");
    assert_eq!(space.lockfile, "");
    let again = database
        .create_space(&actor(bob), "team", bob, "key1", b"w")
        .await;
    assert!(matches!(again, Err(DbError::Conflict(_))), "{again:?}");
    assert_eq!(
        database.space_role(space.id, ada).await.unwrap(),
        Some(SpaceRole::Owner)
    );
    assert_eq!(database.space_role(space.id, bob).await.unwrap(), None);

    database
        .set_space_member(&actor(ada), &space, bob, Some(SpaceRole::Viewer))
        .await
        .unwrap();
    assert_eq!(
        database.space_members(space.id).await.unwrap(),
        [
            ("ada".to_string(), SpaceRole::Owner),
            ("bob".to_string(), SpaceRole::Viewer)
        ]
    );
    let demoted = database
        .set_space_member(&actor(ada), &space, ada, Some(SpaceRole::Admin))
        .await;
    assert!(matches!(demoted, Err(DbError::Conflict(_))), "{demoted:?}");
    database
        .set_space_member(&actor(ada), &space, bob, Some(SpaceRole::Owner))
        .await
        .unwrap();
    database
        .set_space_member(&actor(bob), &space, ada, None)
        .await
        .unwrap();
    assert_eq!(database.space_role(space.id, ada).await.unwrap(), None);
    let spaces = database.spaces_of(bob).await.unwrap();
    assert_eq!(spaces.len(), 1);
    assert_eq!(spaces[0].1, SpaceRole::Owner);

    let other = database
        .create_space(&actor(ada), "other", ada, "key1", b"w")
        .await
        .unwrap();
    let taken = database.rename_space(&actor(ada), &other, "team").await;
    assert!(matches!(taken, Err(DbError::Conflict(_))), "{taken:?}");
    database
        .rename_space(&actor(ada), &other, "renamed")
        .await
        .unwrap();
    assert_eq!(
        database.space("renamed").await.unwrap().unwrap().id,
        other.id
    );
    assert!(database.space("other").await.unwrap().is_none());
    let names: Vec<String> = database
        .all_spaces()
        .await
        .unwrap()
        .into_iter()
        .map(|space| space.name)
        .collect();
    assert_eq!(names, ["renamed", "team"]);
}

async fn space_tokens_are_found_by_hash_and_revoked(database: Database) {
    let ada = user(&database, "ada").await;
    let space = database
        .create_space(&actor(ada), "team", ada, "key1", b"w")
        .await
        .unwrap();
    let new_token = NewSpaceToken {
        name: "ci".into(),
        hash: vec![7; 32],
        prefix: "aerie_s_ab".into(),
        role: SpaceRole::Admin,
        created_by: Some(ada),
        expires_at: None,
    };
    let token = database
        .create_space_token(&actor(ada), &space, &new_token)
        .await
        .unwrap();
    assert_eq!(token.role, SpaceRole::Admin);
    assert_eq!(token.created_by.as_deref(), Some("ada"));
    let same_name = database
        .create_space_token(
            &actor(ada),
            &space,
            &NewSpaceToken {
                hash: vec![8; 32],
                ..new_token.clone()
            },
        )
        .await;
    assert!(
        matches!(same_name, Err(DbError::Conflict(_))),
        "{same_name:?}"
    );
    let found = database
        .space_token_by_hash(&[7; 32])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, token.id);
    assert!(
        database
            .space_token_by_hash(&[9; 32])
            .await
            .unwrap()
            .is_none()
    );
    database.touch_space_token(&found).await.unwrap();
    let touched = database
        .space_token_by_hash(&[7; 32])
        .await
        .unwrap()
        .unwrap();
    let first_use = touched.last_used_at.expect("the use is recorded");
    // A use within the minute writes nothing.
    database.touch_space_token(&touched).await.unwrap();
    let again = database
        .space_token_by_hash(&[7; 32])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.last_used_at, Some(first_use));
    database
        .revoke_space_token(&actor(ada), &space, token.id)
        .await
        .unwrap();
    let revoked = database
        .space_token_by_hash(&[7; 32])
        .await
        .unwrap()
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(revoked.last_used_at.is_some());
    let twice = database
        .revoke_space_token(&actor(ada), &space, token.id)
        .await;
    assert!(matches!(twice, Err(DbError::NotFound(_))), "{twice:?}");
    // Another space's token id is not found through this space.
    let other = database
        .create_space(&actor(ada), "other", ada, "key1", b"w")
        .await
        .unwrap();
    let other_token = database
        .create_space_token(
            &actor(ada),
            &other,
            &NewSpaceToken {
                hash: vec![10; 32],
                ..new_token
            },
        )
        .await
        .unwrap();
    let crossed = database
        .revoke_space_token(&actor(ada), &space, other_token.id)
        .await;
    assert!(matches!(crossed, Err(DbError::NotFound(_))), "{crossed:?}");
    assert_eq!(database.space_tokens(space.id).await.unwrap().len(), 1);
}

fn installation(plugin: &str, version: &str) -> Installation {
    Installation {
        plugin: plugin.into(),
        requirement: Some("^1".into()),
        version: version.into(),
        digest: format!("sha256:{version}"),
        previous_version: None,
        previous_digest: None,
        status: InstallationStatus::Active,
        status_reason: None,
        config: "{}".into(),
        granted: "{}".into(),
    }
}

fn event(plugin: &str, kind: &str) -> NewEvent {
    NewEvent {
        plugin: plugin.into(),
        kind: kind.into(),
        from_version: None,
        to_version: Some("1.0.0".into()),
        message: None,
    }
}

async fn a_space_change_lands_whole_with_events_and_audit(database: Database) {
    let ada = user(&database, "ada").await;
    let mut space = database
        .create_space(&actor(ada), "team", ada, "key1", b"w")
        .await
        .unwrap();
    assert_eq!(space.revision, 0);
    let install = SpaceChange {
        lockfile: Some("version = 1".into()),
        upserts: vec![
            installation("acme/client", "1.0.0"),
            Installation {
                requirement: None,
                ..installation("acme/server", "1.0.0")
            },
        ],
        events: vec![
            event("acme/client", "installed"),
            event("acme/server", "installed"),
        ],
        action: "installation.install".into(),
        details: serde_json::json!({ "plugin": "acme/client" }),
        ..SpaceChange::default()
    };
    space.revision = database
        .commit_space(&actor(ada), &space, &install)
        .await
        .unwrap();
    assert_eq!(space.revision, 1);
    let installed = database.installations(space.id).await.unwrap();
    assert_eq!(installed.len(), 2);
    assert_eq!(installed[1].installation.requirement, None);
    assert_eq!(
        database.space("team").await.unwrap().unwrap().lockfile,
        "version = 1"
    );

    // An update rewrites the row in place.
    let mut updated = installation("acme/client", "1.1.0");
    updated.previous_version = Some("1.0.0".into());
    updated.status_reason = Some("note".into());
    let planned_from = space.clone();
    space.revision = database
        .commit_space(
            &actor(ada),
            &space,
            &SpaceChange {
                upserts: vec![updated.clone()],
                events: vec![event("acme/client", "updated")],
                action: "installation.update".into(),
                details: serde_json::json!({}),
                ..SpaceChange::default()
            },
        )
        .await
        .unwrap();
    let client = database
        .installation(space.id, "acme/client")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.installation, updated);
    assert_eq!(client.id, installed[0].id);

    // A change planned from the revision before that one is refused and writes nothing.
    let stale = database
        .commit_space(
            &actor(ada),
            &planned_from,
            &SpaceChange {
                lockfile: Some("version = 0".into()),
                removals: vec!["acme/client".into()],
                events: vec![event("acme/client", "uninstalled")],
                action: "installation.uninstall".into(),
                details: serde_json::json!({}),
                ..SpaceChange::default()
            },
        )
        .await;
    assert!(
        matches!(stale, Err(DbError::SpaceChanged(ref name)) if name == "team"),
        "{stale:?}"
    );
    let stored = database.space("team").await.unwrap().unwrap();
    assert_eq!(
        (stored.revision, stored.lockfile.as_str()),
        (2, "version = 1")
    );
    assert!(stored.changed_at > 0);
    assert_eq!(database.installations(space.id).await.unwrap().len(), 2);
    assert_eq!(database.space_revisions().await.unwrap(), [(space.id, 2)]);

    // An uninstall removes the rows, and the state only when asked.
    let scope = installation_scope(space.id, "acme/client");
    database
        .state_set(&scope, "default", "k", b"v", StateQuota::UNLIMITED)
        .await
        .unwrap();
    let server_scope = installation_scope(space.id, "acme/server");
    database
        .state_set(&server_scope, "default", "k", b"v", StateQuota::UNLIMITED)
        .await
        .unwrap();
    database
        .commit_space(
            &actor(ada),
            &space,
            &SpaceChange {
                removals: vec!["acme/client".into(), "acme/server".into()],
                delete_state: vec!["acme/client".into()],
                events: vec![event("acme/client", "uninstalled")],
                action: "installation.uninstall".into(),
                details: serde_json::json!({}),
                ..SpaceChange::default()
            },
        )
        .await
        .unwrap();
    assert!(database.installations(space.id).await.unwrap().is_empty());
    assert_eq!(
        database.state_get(&scope, "default", "k").await.unwrap(),
        None
    );
    assert_eq!(
        database
            .state_get(&server_scope, "default", "k")
            .await
            .unwrap(),
        Some(b"v".to_vec())
    );
    // History outlives the installation, newest first.
    let events: Vec<String> = database
        .installation_events(space.id, "acme/client", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.event.kind)
        .collect();
    assert_eq!(events, ["uninstalled", "updated", "installed"]);
    let audit = database
        .audit_entries(&AuditQuery {
            target_prefix: Some("space:team".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|entry| entry.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "installation.uninstall",
            "installation.update",
            "installation.install",
            "space.create"
        ]
    );
}

async fn secrets_are_set_replaced_and_removed_per_installation(database: Database) {
    let ada = user(&database, "ada").await;
    let space = database
        .create_space(&actor(ada), "team", ada, "key1", b"w")
        .await
        .unwrap();
    database
        .commit_space(
            &actor(ada),
            &space,
            &SpaceChange {
                upserts: vec![
                    installation("acme/a", "1.0.0"),
                    installation("acme/b", "1.0.0"),
                ],
                action: "installation.install".into(),
                details: serde_json::json!({}),
                ..SpaceChange::default()
            },
        )
        .await
        .unwrap();
    let a = database
        .installation(space.id, "acme/a")
        .await
        .unwrap()
        .unwrap();
    let b = database
        .installation(space.id, "acme/b")
        .await
        .unwrap()
        .unwrap();
    for (value, name) in [
        (b"one".as_slice(), "token"),
        (b"two", "token"),
        (b"x", "other"),
    ] {
        database
            .set_installation_secret(&actor(ada), &space, &a, name, Some(value))
            .await
            .unwrap();
    }
    assert_eq!(
        database.installation_secrets(a.id).await.unwrap(),
        [
            ("other".to_string(), b"x".to_vec()),
            ("token".to_string(), b"two".to_vec())
        ]
    );
    assert!(
        database
            .installation_secrets(b.id)
            .await
            .unwrap()
            .is_empty()
    );
    database
        .set_installation_secret(&actor(ada), &space, &a, "other", None)
        .await
        .unwrap();
    let absent = database
        .set_installation_secret(&actor(ada), &space, &a, "other", None)
        .await;
    assert!(matches!(absent, Err(DbError::NotFound(_))), "{absent:?}");
    assert_eq!(database.installation_secrets(a.id).await.unwrap().len(), 1);
    // The audit log names the secret and never holds its value.
    let audit = database
        .audit_entries(&AuditQuery {
            target_prefix: Some("space:team".into()),
            limit: 20,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let text = serde_json::to_string(&audit).unwrap();
    assert!(text.contains("\"secret\":\"token\""), "{text}");
    assert!(!text.contains("two"), "{text}");
}

async fn deleting_a_space_deletes_everything_in_it(database: Database) {
    let ada = user(&database, "ada").await;
    let space = database
        .create_space(&actor(ada), "team", ada, "key1", b"w")
        .await
        .unwrap();
    let other = database
        .create_space(&actor(ada), "other", ada, "key1", b"w")
        .await
        .unwrap();
    for target in [&space, &other] {
        database
            .commit_space(
                &actor(ada),
                target,
                &SpaceChange {
                    upserts: vec![installation("acme/a", "1.0.0")],
                    events: vec![event("acme/a", "installed")],
                    action: "installation.install".into(),
                    details: serde_json::json!({}),
                    ..SpaceChange::default()
                },
            )
            .await
            .unwrap();
        let a = database
            .installation(target.id, "acme/a")
            .await
            .unwrap()
            .unwrap();
        database
            .set_installation_secret(&actor(ada), target, &a, "s", Some(b"v"))
            .await
            .unwrap();
        database
            .state_set(
                &installation_scope(target.id, "acme/a"),
                "default",
                "k",
                b"v",
                StateQuota::UNLIMITED,
            )
            .await
            .unwrap();
    }
    database.delete_space(&actor(ada), &space).await.unwrap();
    assert!(database.space("team").await.unwrap().is_none());
    assert!(database.installations(space.id).await.unwrap().is_empty());
    assert!(database.space_members(space.id).await.unwrap().is_empty());
    assert_eq!(
        database
            .state_get(&installation_scope(space.id, "acme/a"), "default", "k")
            .await
            .unwrap(),
        None
    );
    // The other space is untouched.
    let kept = database
        .installation(other.id, "acme/a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        database.installation_secrets(kept.id).await.unwrap().len(),
        1
    );
    assert_eq!(
        database
            .state_get(&installation_scope(other.id, "acme/a"), "default", "k")
            .await
            .unwrap(),
        Some(b"v".to_vec())
    );
}

async fn master_key_rotation_rewraps_every_space(database: Database) {
    let ada = user(&database, "ada").await;
    for name in ["one", "two"] {
        database
            .create_space(&actor(ada), name, ada, "old", b"old-wrap")
            .await
            .unwrap();
    }
    let spaces = database.all_spaces().await.unwrap();
    let rewrapped: Vec<(i64, String, Vec<u8>)> = spaces
        .iter()
        .map(|space| {
            (
                space.id,
                "new".to_string(),
                format!("new-{}", space.name).into_bytes(),
            )
        })
        .collect();
    database
        .rewrap_space_keys(&actor(ada), &rewrapped, "new")
        .await
        .unwrap();
    for space in database.all_spaces().await.unwrap() {
        assert_eq!(space.master_key_id, "new");
        assert_eq!(
            space.wrapped_key,
            format!("new-{}", space.name).into_bytes()
        );
    }
}

async fn the_catalogue_change_log_orders_publishes_and_yanks(database: Database) {
    let ada = user(&database, "ada").await;
    let namespace = database
        .create_namespace(&actor(ada), "acme", ada, false, false)
        .await
        .unwrap();
    let start = database.catalog_position().await.unwrap();
    let PublishOutcome::Created(first) = database
        .publish_version(
            &actor(ada),
            &new_version(namespace.id, "1.0.0", "sha256:a", ada),
        )
        .await
        .unwrap()
    else {
        panic!("created");
    };
    database
        .publish_version(
            &actor(ada),
            &new_version(namespace.id, "1.1.0", "sha256:b", ada),
        )
        .await
        .unwrap();
    let after_publishes = database.catalog_position().await.unwrap();
    database
        .set_yanked(&actor(ada), &first, true)
        .await
        .unwrap();
    let after_yank = database.catalog_position().await.unwrap();
    // Positions never go back (on PostgreSQL another database's open transaction may hold
    // them where they are).
    assert!(after_yank >= after_publishes && after_publishes >= start);
    // Nothing new since the last position (on PostgreSQL, changes of transactions that were
    // open when it was taken may be read again: reading one twice does no harm).
    let (changed, next) = database
        .catalog_changes_since(after_yank)
        .await
        .unwrap()
        .unwrap();
    let read_again = match database.backend() {
        aerie_db::Backend::Sqlite => Vec::new(),
        aerie_db::Backend::Postgres => vec![first.plugin_id],
    };
    assert!(
        changed.iter().all(|plugin| read_again.contains(plugin)) && next >= after_yank,
        "{changed:?} {next}"
    );
    let (changed, next) = database
        .catalog_changes_since(start)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed, vec![first.plugin_id]);
    assert!(next >= after_yank);
    // Pruned past a reader's position, the log says so: the reader rebuilds.
    assert_eq!(
        database
            .prune_catalog_changes(aerie_db::now_millis() + 1)
            .await
            .unwrap(),
        3
    );
    assert_eq!(database.catalog_changes_since(start).await.unwrap(), None);
    // A reader starting now reads on. (On PostgreSQL "now" is the oldest transaction still
    // open in the cluster, which another test's may hold before the pruned changes.)
    if database.backend() == aerie_db::Backend::Sqlite {
        let now = database.catalog_position().await.unwrap();
        assert!(database.catalog_changes_since(now).await.unwrap().is_some());
    }

    let entry = database
        .catalog_entry(first.plugin_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.name, "acme/hello");
    let versions: Vec<(&str, bool)> = entry
        .versions
        .iter()
        .map(|version| (version.version.as_str(), version.yanked))
        .collect();
    assert_eq!(versions, [("1.0.0", true), ("1.1.0", false)]);
    database
        .add_downloads(&[(first.id, 20_000, 3), (first.id, 20_001, 4)])
        .await
        .unwrap();
    assert_eq!(
        database.catalog_entries_after(0, 10).await.unwrap()[0].downloads,
        7
    );
    assert_eq!(
        database
            .catalog_entry(first.plugin_id)
            .await
            .unwrap()
            .unwrap()
            .downloads,
        7
    );
    assert!(
        database
            .catalog_entry(first.plugin_id + 100)
            .await
            .unwrap()
            .is_none()
    );
}

async fn the_catalogue_is_read_in_pages_of_plugins(database: Database) {
    let ada = user(&database, "ada").await;
    let namespace = database
        .create_namespace(&actor(ada), "acme", ada, false, false)
        .await
        .unwrap();
    for index in 0..5 {
        for version in ["1.0.0", "1.1.0"] {
            let mut new = new_version(
                namespace.id,
                version,
                &format!("sha256:{index}{version}"),
                ada,
            );
            new.name = format!("plugin-{index}");
            database.publish_version(&actor(ada), &new).await.unwrap();
        }
    }
    let mut names = Vec::new();
    let mut after = 0;
    loop {
        let page = database.catalog_entries_after(after, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 2);
        after = last.plugin_id;
        for entry in page {
            assert_eq!(entry.versions.len(), 2, "{}", entry.name);
            names.push(entry.name);
        }
    }
    assert_eq!(
        names,
        (0..5)
            .map(|index| format!("acme/plugin-{index}"))
            .collect::<Vec<_>>()
    );
}

async fn a_certification_step_lands_only_from_the_state_seen(database: Database) {
    let ada = user(&database, "ada").await;
    let admin = user(&database, "admin").await;
    let namespace = database
        .create_namespace(&actor(ada), "acme", ada, false, false)
        .await
        .unwrap();
    let PublishOutcome::Created(version) = database
        .publish_version(
            &actor(ada),
            &new_version(namespace.id, "1.0.0", "sha256:a", ada),
        )
        .await
        .unwrap()
    else {
        panic!("created");
    };
    let step = |from_state, to_state, user_id, signature| CertificationStep {
        from_state,
        to_state,
        user_id,
        reason: None,
        signature,
    };
    database
        .record_certification_step(&actor(ada), &version, &step(None, "submitted", ada, None))
        .await
        .unwrap();
    // A second submission of a never-submitted version lost the race.
    assert!(matches!(
        database
            .record_certification_step(&actor(ada), &version, &step(None, "submitted", ada, None))
            .await,
        Err(DbError::Conflict(_))
    ));
    database
        .record_certification_step(
            &actor(admin),
            &version,
            &step(Some("submitted"), "in_review", admin, None),
        )
        .await
        .unwrap();
    // A step from a state the version has left changes nothing.
    assert!(matches!(
        database
            .record_certification_step(
                &actor(admin),
                &version,
                &step(Some("submitted"), "rejected", admin, None),
            )
            .await,
        Err(DbError::Conflict(_))
    ));
    let position = database.catalog_position().await.unwrap();
    database
        .record_certification_step(
            &actor(admin),
            &version,
            &step(Some("in_review"), "certified", admin, Some(("sig", "KEY1"))),
        )
        .await
        .unwrap();
    // The certification is in the catalogue's change log: a follower re-indexes the plugin.
    let (changed, _) = database
        .catalog_changes_since(position)
        .await
        .unwrap()
        .unwrap();
    assert!(changed.contains(&version.plugin_id), "{changed:?}");
    let certification = database.certification(version.id).await.unwrap().unwrap();
    assert_eq!(certification.state, "certified");
    assert_eq!(certification.submitted_by.as_deref(), Some("ada"));
    assert_eq!(certification.reviewer.as_deref(), Some("admin"));
    assert_eq!(certification.signature.as_deref(), Some("sig"));
    let record = database
        .version("acme", "hello", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.certification.as_deref(), Some("certified"));
    assert_eq!(record.certification_signature.as_deref(), Some("sig"));
    let entry = database
        .catalog_entry(version.plugin_id)
        .await
        .unwrap()
        .unwrap();
    assert!(entry.versions[0].certified);
    let events: Vec<(Option<String>, String)> = database
        .certification_events(version.id)
        .await
        .unwrap()
        .into_iter()
        .map(|event| (event.from_state, event.to_state))
        .collect();
    assert_eq!(
        events,
        [
            (None, "submitted".to_string()),
            (Some("submitted".to_string()), "in_review".to_string()),
            (Some("in_review".to_string()), "certified".to_string()),
        ]
    );
    assert_eq!(
        database
            .certification_queue(Some("certified"), 10, 0)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        database
            .certification_queue(Some("submitted"), 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
    // Withdrawing the certification drops the signature.
    database
        .record_certification_step(
            &actor(admin),
            &version,
            &step(Some("certified"), "rejected", admin, None),
        )
        .await
        .unwrap();
    let certification = database.certification(version.id).await.unwrap().unwrap();
    assert_eq!(
        (certification.state.as_str(), certification.signature),
        ("rejected", None)
    );
}

async fn publish_buckets_empty_and_refill_and_concurrent_takes_lose_none(database: Database) {
    use aerie_db::{PublishBudget, Take};
    let ada = user(&database, "ada").await;
    let acme = database
        .create_namespace(&actor(ada), "acme", ada, false, false)
        .await
        .unwrap();
    // A bucket that refills far slower than the test runs: ten takes at once get exactly
    // five publishes, whichever connections they run on.
    let slow = PublishBudget {
        burst: 5,
        refill_ms: 3_600_000,
    };
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let database = database.clone();
        running.spawn(async move { database.take_publish(acme.id, slow).await });
    }
    let takes = running.join_all().await;
    let taken = takes
        .iter()
        .filter(|take| matches!(take, Ok(Take::Taken { .. })))
        .count();
    assert_eq!(taken, 5, "{takes:?}");
    let Take::Empty { retry_after_ms } = database.take_publish(acme.id, slow).await.unwrap() else {
        panic!("the bucket should be empty");
    };
    assert!(
        (1..=3_600_000).contains(&retry_after_ms),
        "{retry_after_ms}"
    );
    // A bucket that refills at once gives again.
    let fast = PublishBudget {
        burst: 5,
        refill_ms: 1,
    };
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(matches!(
        database.take_publish(acme.id, fast).await.unwrap(),
        Take::Taken { .. }
    ));
}

async fn failed_logins_are_audited(database: Database) {
    database
        .record_failed_login(
            &Actor {
                ip: Some("192.0.2.7".into()),
                ..Actor::default()
            },
            "mallory",
            "wrong password",
        )
        .await
        .unwrap();
    let entries = database
        .audit_entries(&aerie_db::AuditQuery {
            action: Some("session.login_failed".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].target, "user:mallory");
    assert_eq!(entries[0].ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(entries[0].details["reason"], "wrong password");
}

async fn plugin_state_counts_against_its_spaces_quota(database: Database) {
    let quota = StateQuota {
        keys: 3,
        bytes: 100,
    };
    // Two installations of one space share its quota; another space has its own.
    database
        .state_set("space:1/acme/a", "default", "k1", &[0; 30], quota)
        .await
        .unwrap();
    database
        .state_set("space:1/acme/b", "default", "k2", &[0; 30], quota)
        .await
        .unwrap();
    assert_eq!(
        database.state_usage("space:1/acme/a").await.unwrap(),
        aerie_db::StateUsage { keys: 2, bytes: 64 }
    );
    let over = database
        .state_set("space:1/acme/a", "default", "k3", &[0; 40], quota)
        .await;
    assert!(matches!(over, Err(DbError::QuotaExceeded(_))), "{over:?}");
    assert_eq!(
        database
            .state_get("space:1/acme/a", "default", "k3")
            .await
            .unwrap(),
        None
    );
    database
        .state_set("space:2/acme/a", "default", "k3", &[0; 40], quota)
        .await
        .unwrap();
    // Replacing a value counts the difference; a new counter counts as a key.
    database
        .state_set("space:1/acme/a", "default", "k1", &[0; 60], quota)
        .await
        .unwrap();
    database
        .state_increment("space:1/acme/a", "default", "n", 1, quota)
        .await
        .unwrap();
    let over = database
        .state_increment("space:1/acme/b", "default", "m", 1, quota)
        .await;
    assert!(matches!(over, Err(DbError::QuotaExceeded(_))), "{over:?}");
    assert_eq!(
        database.state_usage("space:1/x").await.unwrap(),
        aerie_db::StateUsage { keys: 3, bytes: 96 }
    );
    // Deleting frees what it held.
    database
        .state_delete("space:1/acme/b", "default", "k2")
        .await
        .unwrap();
    database.state_clear("space:1/acme/a").await.unwrap();
    assert_eq!(
        database.state_usage("space:1/x").await.unwrap(),
        aerie_db::StateUsage::default()
    );
}

async fn a_members_tokens_go_with_their_membership(database: Database) {
    let ada = user(&database, "ada").await;
    let bob = user(&database, "bob").await;
    let space = database
        .create_space(&actor(ada), "team", ada, "key1", b"w")
        .await
        .unwrap();
    database
        .set_space_member(&actor(ada), &space, bob, Some(SpaceRole::Admin))
        .await
        .unwrap();
    for (hash, role) in [
        (1u8, SpaceRole::Admin),
        (2, SpaceRole::Member),
        (3, SpaceRole::Viewer),
    ] {
        database
            .create_space_token(
                &actor(bob),
                &space,
                &NewSpaceToken {
                    name: format!("t{hash}"),
                    hash: vec![hash; 32],
                    prefix: "aerie_s_ab".into(),
                    role,
                    created_by: Some(bob),
                    expires_at: None,
                },
            )
            .await
            .unwrap();
    }
    let live = |hash: u8| {
        let database = database.clone();
        async move {
            database
                .space_token_by_hash(&[hash; 32])
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_none()
        }
    };
    // Demoted to member: the admin token goes, the others stay.
    database
        .set_space_member(&actor(ada), &space, bob, Some(SpaceRole::Member))
        .await
        .unwrap();
    assert_eq!(
        (live(1).await, live(2).await, live(3).await),
        (false, true, true)
    );
    // Removed: all go.
    database
        .set_space_member(&actor(ada), &space, bob, None)
        .await
        .unwrap();
    assert_eq!(
        (live(1).await, live(2).await, live(3).await),
        (false, false, false)
    );
}

/// On PostgreSQL a change's id is taken when it is written and commits later: a change that
/// commits after a later one must still be read, not skipped by a reader that moved past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_after_a_later_one_is_still_read_on_postgres() {
    let url = aerie_test_support::postgres().fresh_database();
    let database = Database::connect(&url).await.unwrap();
    let ada = user(&database, "ada").await;
    let namespace = database
        .create_namespace(&actor(ada), "acme", ada, false, false)
        .await
        .unwrap();
    let publish = |version: &'static str, digest: &'static str| {
        let database = database.clone();
        let namespace_id = namespace.id;
        async move {
            match database
                .publish_version(
                    &actor(ada),
                    &new_version(namespace_id, version, digest, ada),
                )
                .await
                .unwrap()
            {
                PublishOutcome::Created(created) => created,
                other => panic!("{other:?}"),
            }
        }
    };
    let first = publish("1.0.0", "sha256:a").await;
    let start = database.catalog_position().await.unwrap();
    // A slow transaction writes a change for the plugin and stays open...
    let raw = sqlx::postgres::PgPool::connect(&url).await.unwrap();
    let mut slow = raw.begin().await.unwrap();
    sqlx::query("INSERT INTO catalog_changes (plugin_id, at) VALUES ($1, $2)")
        .bind(first.plugin_id)
        .bind(aerie_db::now_millis())
        .execute(&mut *slow)
        .await
        .unwrap();
    // ...while another publish commits after it, with a later id.
    let mut other = new_version(namespace.id, "1.0.0", "sha256:c", ada);
    other.name = "other".into();
    let PublishOutcome::Created(later) =
        database.publish_version(&actor(ada), &other).await.unwrap()
    else {
        panic!("created");
    };
    let (changed, next) = database
        .catalog_changes_since(start)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed, vec![later.plugin_id]);
    slow.commit().await.unwrap();
    // The reader reads from where it was told, and finds the change committed late.
    let (changed, _) = database.catalog_changes_since(next).await.unwrap().unwrap();
    assert!(changed.contains(&first.plugin_id), "{changed:?}");
}
