//! The connection pools, one per database role, and the schema migration.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::NoTls;

use crate::config::DatabaseConfig;
use crate::sql;

/// A pool per role: what a request can do is bounded by the role it runs as.
pub struct Pools {
    /// `consentkit_ingest`.
    pub ingest: Pool,
    /// `consentkit_support`.
    pub support: Pool,
    /// `consentkit_dpo`.
    pub dpo: Pool,
    /// `consentkit_auditor`.
    pub auditor: Pool,
}

/// One pool from a connection string. Broken connections (a restarted PostgreSQL) are dropped
/// when next taken; waiting for a connection is bounded so requests fail fast (503) instead of hanging.
pub fn pool(url: &str, size: usize) -> Result<Pool, String> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| format!("bad connection string: {e}"))?;
    config.connect_timeout(Duration::from_secs(3));
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(Duration::from_secs(5)),
            create: Some(Duration::from_secs(3)),
            recycle: Some(Duration::from_secs(3)),
        })
        .build()
        .map_err(|e| format!("cannot build the pool: {e}"))
}

impl Pools {
    /// The four pools of a config.
    pub fn new(db: &DatabaseConfig) -> Result<Pools, String> {
        Ok(Pools {
            ingest: pool(&db.ingest, db.pool_size)?,
            support: pool(&db.support, db.pool_size)?,
            dpo: pool(&db.dpo, db.pool_size.div_ceil(2))?,
            auditor: pool(&db.auditor, 2)?,
        })
    }
}

/// Creates the tables, the device-erasure function and the roles (idempotent), connected as the owner (`url`).
pub async fn migrate(url: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(|e| format!("cannot connect as the owner: {e}"))?;
    let task = tokio::spawn(connection);
    client.batch_execute(sql::SCHEMA).await.map_err(|e| format!("schema: {e}"))?;
    client.batch_execute(sql::FUNCTIONS).await.map_err(|e| format!("functions: {e}"))?;
    client.batch_execute(sql::ROLES).await.map_err(|e| format!("roles: {e}"))?;
    drop(client);
    let _ = task.await;
    Ok(())
}
