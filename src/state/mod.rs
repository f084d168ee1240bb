//! Persisted detection state (baselines, new-terms history) behind a small
//! trait, with two stores:
//! - [`FileStore`]: an embedded `redb` database file (ACID, copy-on-write
//!   commits with checksums: a `kill -9` at any point leaves the last
//!   committed state readable);
//! - [`S3Store`]: one JSON object per namespace under an `s3://` prefix, for
//!   containers without a volume (single writer per prefix).
//!
//! Values are JSON documents; keys are strings (an identity, a group key).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

/// Errors of a state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded database failed.
    #[error("state file {path}: {message}")]
    File {
        /// Database path.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Another process holds the database file.
    #[error("state file {}: in use by another process (a running daemon or trainer holds it; stop it or point state.path elsewhere)", path.display())]
    InUse {
        /// Database path.
        path: PathBuf,
    },
    /// S3 failed.
    #[error("state object s3://{bucket}/{key}: {message}")]
    S3 {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// What failed (and the permission it needs).
        message: String,
    },
}

/// Key → value entries of one namespace.
pub type Entries = Vec<(String, Vec<u8>)>;

/// A namespaced key → JSON value store.
pub trait StateStore: Send + Sync {
    /// Every entry of a namespace.
    fn load(
        &self,
        ns: &str,
    ) -> impl Future<Output = Result<Vec<(String, Vec<u8>)>, StoreError>> + Send;
    /// Upsert entries atomically (all or none).
    fn save(
        &self,
        ns: &str,
        items: Vec<(String, Vec<u8>)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The embedded file store.
#[derive(Clone)]
pub struct FileStore {
    db: Arc<redb::Database>,
    path: PathBuf,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileStore({})", self.path.display())
    }
}

impl FileStore {
    /// Open (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |e: &dyn std::fmt::Display| StoreError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        }
        let db = redb::Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                path: path.to_path_buf(),
            },
            e => err(&e),
        })?;
        Ok(Self {
            db: Arc::new(db),
            path: path.to_path_buf(),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::File {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Blocking load.
    pub fn load_blocking(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let def: TableDefinition<&str, &[u8]> = TableDefinition::new(ns);
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = match txn.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Blocking save (one durable transaction).
    pub fn save_blocking(&self, ns: &str, items: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let def: TableDefinition<&str, &[u8]> = TableDefinition::new(ns);
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(def).map_err(|e| self.err(e))?;
            for (k, v) in items {
                table
                    .insert(k.as_str(), v.as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))
    }
}

impl StateStore for FileStore {
    async fn load(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let (s, ns) = (self.clone(), ns.to_string());
        tokio::task::spawn_blocking(move || s.load_blocking(&ns))
            .await
            .map_err(|e| self.err(e))?
    }

    async fn save(&self, ns: &str, items: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        let (s, ns) = (self.clone(), ns.to_string());
        tokio::task::spawn_blocking(move || s.save_blocking(&ns, &items))
            .await
            .map_err(|e| self.err(e))?
    }
}

/// One JSON object per namespace at `s3://bucket/prefix/<ns>.json`.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    /// Serialises read-modify-write of the namespace objects in this process.
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl S3Store {
    /// A store under `s3://bucket/prefix`.
    pub fn new(client: aws_sdk_s3::Client, bucket: String, prefix: String) -> Self {
        Self {
            client,
            bucket,
            prefix: prefix.trim_end_matches('/').to_string(),
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn key(&self, ns: &str) -> String {
        let name = format!("{}.json", ns.replace('/', "__"));
        if self.prefix.is_empty() {
            name
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    async fn read(&self, ns: &str) -> Result<BTreeMap<String, serde_json::Value>, StoreError> {
        use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
        let key = self.key(ns);
        let err = |message: String| StoreError::S3 {
            bucket: self.bucket.clone(),
            key: key.clone(),
            message,
        };
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(o) => {
                let bytes = o
                    .body
                    .collect()
                    .await
                    .map_err(|e| err(e.to_string()))?
                    .into_bytes();
                serde_json::from_slice(&bytes)
                    .map_err(|e| err(format!("not a state document: {e}")))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_key() || s.code() == Some("NoSuchKey")) =>
            {
                Ok(BTreeMap::new())
            }
            Err(e) => Err(err(format!(
                "{} (needs s3:GetObject)",
                DisplayErrorContext(&e)
            ))),
        }
    }
}

impl StateStore for S3Store {
    async fn load(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .read(ns)
            .await?
            .into_iter()
            .map(|(k, v)| (k, serde_json::to_vec(&v).unwrap_or_default()))
            .collect())
    }

    async fn save(&self, ns: &str, items: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        let _guard = self.lock.lock().await;
        let mut doc = self.read(ns).await?;
        let key = self.key(ns);
        for (k, v) in items {
            let value = serde_json::from_slice(&v).map_err(|e| StoreError::S3 {
                bucket: self.bucket.clone(),
                key: key.clone(),
                message: format!("value for {k} is not JSON: {e}"),
            })?;
            doc.insert(k, value);
        }
        let body = serde_json::to_vec(&doc).unwrap_or_default();
        // A PUT replaces the object atomically: readers see old or new, never a mix.
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::S3 {
                bucket: self.bucket.clone(),
                key,
                message: format!(
                    "{} (needs s3:PutObject)",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ),
            })
    }
}

/// The configured store.
#[derive(Clone, Debug)]
pub enum Store {
    /// Embedded file.
    File(FileStore),
    /// S3 objects.
    S3(S3Store),
}

impl StateStore for Store {
    async fn load(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        match self {
            Store::File(s) => s.load(ns).await,
            Store::S3(s) => s.load(ns).await,
        }
    }

    async fn save(&self, ns: &str, items: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        match self {
            Store::File(s) => s.save(ns, items).await,
            Store::S3(s) => s.save(ns, items).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_store_roundtrip_and_reopen() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.redb");
        let s = FileStore::open(&p).unwrap();
        assert!(s.load("baseline/x").await.unwrap().is_empty());
        s.save(
            "baseline/x",
            vec![
                ("a".into(), b"{\"n\":1}".to_vec()),
                ("b".into(), b"2".to_vec()),
            ],
        )
        .await
        .unwrap();
        s.save("baseline/x", vec![("a".into(), b"{\"n\":3}".to_vec())])
            .await
            .unwrap();
        drop(s);
        let s = FileStore::open(&p).unwrap();
        let mut got = s.load("baseline/x").await.unwrap();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("a".into(), b"{\"n\":3}".to_vec()),
                ("b".into(), b"2".to_vec())
            ]
        );
        assert!(s.load("other").await.unwrap().is_empty());
    }
}
