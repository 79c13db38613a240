//! One contract, two stores: a local directory and a real S3-compatible server.

use aerie_blob::{BlobError, BlobStore, S3Config};
use aerie_core::digest::Digest;
use bytes::Bytes;

fn local() -> (BlobStore, Option<tempfile::TempDir>) {
    let dir = tempfile::tempdir().unwrap();
    (
        BlobStore::local(&dir.path().join("blobs")).unwrap(),
        Some(dir),
    )
}

fn s3() -> (BlobStore, Option<tempfile::TempDir>) {
    let server = aerie_test_support::s3();
    let config = S3Config {
        bucket: server.fresh_bucket(),
        region: "us-east-1".into(),
        endpoint: Some(server.endpoint()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        allow_http: true,
        prefix: Some("aerie".into()),
    };
    (BlobStore::s3(&config).unwrap(), None)
}

macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $test() {
                    let (store, _dir) = super::local();
                    super::$test(store).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test]
                async fn $test() {
                    let (store, _dir) = super::s3();
                    super::$test(store).await;
                }
            )*
        }
    };
}

contract!(
    blobs_round_trip_by_digest,
    writing_twice_is_idempotent_and_makes_the_blob_young_again,
    ranges_read_part_of_a_blob,
    missing_blobs_are_reported_by_digest,
    listing_finds_what_was_written_and_delete_removes_it,
);

fn blob(text: &str) -> (Digest, Bytes) {
    (Digest::of(text.as_bytes()), Bytes::from(text.to_string()))
}

async fn blobs_round_trip_by_digest(store: BlobStore) {
    let (digest, bytes) = blob("a package");
    store.put(&digest, bytes.clone()).await.unwrap();
    assert_eq!(store.get(&digest).await.unwrap(), bytes);
    assert_eq!(store.size(&digest).await.unwrap(), Some(bytes.len() as u64));
}

async fn writing_twice_is_idempotent_and_makes_the_blob_young_again(store: BlobStore) {
    let (digest, bytes) = blob("same bytes");
    store.put(&digest, bytes.clone()).await.unwrap();
    let first = store.written_at(&digest).await.unwrap().unwrap();
    // Object stores keep whole seconds.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    store.put(&digest, bytes.clone()).await.unwrap();
    assert_eq!(store.get(&digest).await.unwrap(), bytes);
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].written_at > first,
        "{} <= {first}",
        listed[0].written_at
    );
    assert_eq!(store.written_at(&blob("never").0).await.unwrap(), None);
}

async fn ranges_read_part_of_a_blob(store: BlobStore) {
    let (digest, bytes) = blob("0123456789");
    store.put(&digest, bytes).await.unwrap();
    assert_eq!(
        store.get_range(&digest, 2..5).await.unwrap(),
        Bytes::from("234")
    );
}

async fn missing_blobs_are_reported_by_digest(store: BlobStore) {
    let (digest, _) = blob("never written");
    match store.get(&digest).await {
        Err(BlobError::NotFound(missing)) => assert_eq!(missing, digest),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.size(&digest).await.unwrap(), None);
    store.delete(&digest).await.unwrap();
}

async fn listing_finds_what_was_written_and_delete_removes_it(store: BlobStore) {
    let (first, first_bytes) = blob("first");
    let (second, second_bytes) = blob("second");
    store.put(&first, first_bytes).await.unwrap();
    store.put(&second, second_bytes).await.unwrap();
    let mut listed: Vec<Digest> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.digest)
        .collect();
    listed.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(listed, expected);
    let written_at = store.list().await.unwrap()[0].written_at;
    assert!(written_at > 1_600_000_000_000, "{written_at}");
    store.delete(&first).await.unwrap();
    let listed: Vec<Digest> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.digest)
        .collect();
    assert_eq!(listed, [second]);
}
