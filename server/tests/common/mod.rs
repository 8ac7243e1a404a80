//! The real parts the server suites run against: a PostgreSQL 15 cluster made by `initdb` in a
//! temporary folder (as the `postgres` system user when the tests run as root: PostgreSQL refuses
//! root), listening on a Unix socket there, stopped at the end; and the `consentkit-server` binary.
//! No mock, no Docker. Without PostgreSQL the suite fails, saying how to install it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use consentkit_core::{Action, ConsentStore, DecisionInput, ManualClock, OpenMode, Policy, Source, Timestamp};
use consentkit_server::wire::Batch;
use serde_json::{json, Value};

/// Where Debian's PostgreSQL 15 lives.
pub fn pg_bin() -> PathBuf {
    for dir in ["/usr/lib/postgresql/15/bin"] {
        if Path::new(dir).join("initdb").exists() {
            return PathBuf::from(dir);
        }
    }
    panic!(
        "PostgreSQL 15 is not installed (no /usr/lib/postgresql/15/bin/initdb): the server suite needs it. \
         Run `sudo scripts/ensure-postgres.sh` (apt-get install postgresql-15), or `make test-server` as root."
    );
}

fn postgres_user() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").unwrap();
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!pw.is_null(), "running as root and there is no 'postgres' system user to run initdb as: run scripts/ensure-postgres.sh");
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// A throwaway PostgreSQL cluster.
pub struct Pg {
    pub dir: tempfile::TempDir,
    pub port: u16,
    user: Option<(u32, u32)>,
}

impl Pg {
    /// initdb, start, create the `consentkit` database, migrate (tables and roles).
    pub fn start() -> Pg {
        let bin = pg_bin();
        let user = postgres_user();
        let dir = tempfile::Builder::new().prefix("ck-pg-").tempdir().unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let port = free_port();
        let pg = Pg { dir, port, user };
        let out = pg
            .command(bin.join("initdb"))
            .args(["-D", pg.data().to_str().unwrap(), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        pg.pg_ctl_start();
        pg.psql("postgres", "CREATE DATABASE consentkit");
        let out =
            Command::new(env!("CARGO_BIN_EXE_consentkit-server")).args(["migrate", "--owner", &pg.conninfo("postgres")]).output().unwrap();
        assert!(out.status.success(), "migrate failed: {}", String::from_utf8_lossy(&out.stderr));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.starts_with("migrated: ") && !said.contains("host="), "migrate says what it did, never the conninfo: {said}");
        pg
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        if let Some((uid, gid)) = self.user {
            c.uid(uid).gid(gid);
        }
        c.current_dir(self.dir.path());
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The socket folder (the cluster's own folder).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A libpq connection string for `user`.
    pub fn conninfo(&self, user: &str) -> String {
        format!("host={} port={} user={user} dbname=consentkit", self.socket_dir().display(), self.port)
    }

    fn pg_ctl_start(&self) {
        let opts = format!("-k {} -c listen_addresses='' -p {} -c max_connections=100", self.socket_dir().display(), self.port);
        let log = self.dir.path().join("postgres.log");
        let out = self
            .command(pg_bin().join("pg_ctl"))
            .args(["-D", self.data().to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "-t", "30", "-o", &opts, "start"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops PostgreSQL (`fast`: in-flight transactions are aborted).
    pub fn stop(&self) {
        let _ = self.command(pg_bin().join("pg_ctl")).args(["-D", self.data().to_str().unwrap(), "-m", "fast", "-w", "stop"]).output();
    }

    /// Starts it again on the same socket.
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// Runs SQL through psql as `user`; returns its unaligned output. Panics on failure.
    pub fn psql(&self, user: &str, sql: &str) -> String {
        let out = self.try_psql(user, sql);
        out.unwrap_or_else(|e| panic!("psql failed on {sql}: {e}"))
    }

    /// Runs SQL through psql as `user`; the error text on failure.
    pub fn try_psql(&self, user: &str, sql: &str) -> Result<String, String> {
        let db = if sql.starts_with("CREATE DATABASE") { "postgres" } else { "consentkit" };
        let out = Command::new(pg_bin().join("psql"))
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir().to_str().unwrap(), "-p", &self.port.to_string()])
            .args(["-U", user, "-d", db, "-c", sql])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// One number from a query.
    pub fn count(&self, sql: &str) -> i64 {
        self.psql("postgres", sql).parse().unwrap()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = self.command(pg_bin().join("pg_ctl")).args(["-D", self.data().to_str().unwrap(), "-m", "immediate", "-w", "stop"]).output();
    }
}

/// A free TCP port number (also names the Unix socket).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The tokens every test server knows.
pub const PHONE: &str = "tok-phone-device-0001";
pub const TABLET: &str = "tok-tablet-device-0002";
pub const SUPPORT: &str = "tok-support-staff-0003";
pub const DPO: &str = "tok-dpo-officer-0004";
pub const AUDITOR: &str = "tok-auditor-0005";
pub const EXPIRED: &str = "tok-expired-support-0006";

/// A running `consentkit-server` on loopback.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
}

/// Writes keys and a config for `pg` into `dir` (once), with extra config fields merged in.
pub fn write_config(pg: &Pg, dir: &Path, extra: Value) -> PathBuf {
    let keys = dir.join("keys");
    if !keys.exists() {
        let out = Command::new(env!("CARGO_BIN_EXE_consentkit-server")).args(["keygen", "--dir", keys.to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let h = consentkit_server::config::hash_token;
    let mut config = json!({
        "listen": "127.0.0.1:0",
        "database": {
            "ingest": pg.conninfo("consentkit_ingest"),
            "support": pg.conninfo("consentkit_support"),
            "dpo": pg.conninfo("consentkit_dpo"),
            "auditor": pg.conninfo("consentkit_auditor"),
            "pool_size": 4,
        },
        "subject_key_file": "keys/subject.key",
        "signing_key_file": "keys/signing.key",
        "max_body_bytes": 262144,
        "tokens": [
            { "name": "phone", "role": "device", "device": "phone", "sha256": h(PHONE) },
            { "name": "tablet", "role": "device", "device": "tablet", "sha256": h(TABLET) },
            { "name": "sam (support)", "role": "support", "sha256": h(SUPPORT) },
            { "name": "dora (dpo)", "role": "dpo", "sha256": h(DPO) },
            { "name": "aude (auditor)", "role": "auditor", "sha256": h(AUDITOR) },
            { "name": "old support", "role": "support", "sha256": h(EXPIRED), "expires": "2020-01-01T00:00:00Z" },
        ],
    });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            config[k] = v;
        }
    }
    let path = dir.join("server.json");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

impl Server {
    /// Starts the server binary with a fresh config in `dir`.
    pub fn start(pg: &Pg, dir: &Path) -> Server {
        let config = write_config(pg, dir, json!({}));
        Server::start_with(&config)
    }

    /// Starts the server binary with this config; waits for its address.
    pub fn start_with(config: &Path) -> Server {
        Server::start_with_env(config, &[])
    }

    /// [`Server::start_with`], with these environment variables set for the server.
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Server {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(config.with_file_name("server.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_consentkit-server"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .envs(env.iter().copied())
            .env_remove("CONSENTKIT_SUBJECT_KEY")
            .env_remove("CONSENTKIT_SIGNING_KEY")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("consentkit-server listening on ")
            .unwrap_or_else(|| panic!("server did not start: {line}"))
            .to_string();
        Server { child, url, dir: config.parent().unwrap().to_path_buf() }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that returns every status (no error on 4xx/5xx).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into()
}

/// A reply: status and parsed JSON body.
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

/// POSTs raw bytes with a bearer token.
pub fn post_raw(url: &str, token: Option<&str>, body: &[u8]) -> Reply {
    let mut req = agent().post(url).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    match req.send(body) {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let text = r.body_mut().read_to_string().unwrap_or_default();
            Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
        }
        Err(e) => Reply { status: 0, body: Value::Null, text: e.to_string() },
    }
}

/// POSTs JSON with a bearer token.
pub fn post(url: &str, token: &str, body: &Value) -> Reply {
    post_raw(url, Some(token), body.to_string().as_bytes())
}

/// GETs with a bearer token.
pub fn get(url: &str, token: &str) -> Reply {
    match agent().get(url).header("authorization", &format!("Bearer {token}")).call() {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let text = r.body_mut().read_to_string().unwrap_or_default();
            Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
        }
        Err(e) => Reply { status: 0, body: Value::Null, text: e.to_string() },
    }
}

/// A device: a real ConsentStore file with a manual clock.
pub struct Device {
    pub name: String,
    pub token: String,
    pub store: ConsentStore,
    pub clock: Arc<ManualClock>,
    pub path: PathBuf,
}

impl Device {
    pub fn new(dir: &Path, name: &str, token: &str, at: &str) -> Device {
        Device::with_policy(dir, name, token, at, Policy::builtin())
    }

    /// A device whose app runs `policy` (e.g. a newer one than the server's).
    pub fn with_policy(dir: &Path, name: &str, token: &str, at: &str, policy: Policy) -> Device {
        let clock = Arc::new(ManualClock::new(Timestamp::parse(at).unwrap()));
        let path = dir.join(format!("{name}.db"));
        let store = ConsentStore::open_with(&path, Arc::new(policy), clock.clone(), OpenMode::ReadWrite).unwrap();
        Device { name: name.into(), token: token.into(), store, clock, path }
    }

    /// Records a decision at the clock's time.
    pub fn decide(&self, subject: &str, category: &str, action: Action, source: Source) {
        self.store.record(&DecisionInput::new(subject, category, action, source)).unwrap();
    }

    /// Sets the clock.
    pub fn at(&self, at: &str) {
        self.clock.set(Timestamp::parse(at).unwrap());
    }

    /// The next batch of the outbox.
    pub fn batch(&self, limit: u32) -> Batch {
        Batch::new(&self.name, self.store.pending_sync(limit).unwrap())
    }

    /// Sends one batch of the outbox; acks on success.
    pub fn sync_once(&self, server: &Server, limit: u32) -> Reply {
        let batch = self.batch(limit);
        let reply = post(&format!("{}/v1/devices/{}/batches", server.url, self.name), &self.token, &serde_json::to_value(&batch).unwrap());
        if reply.status == 200 {
            self.store.ack_sync(reply.body["head"]["seq"].as_u64().unwrap()).unwrap();
        }
        reply
    }

    /// Syncs as an app does through the core's sync client: every batch from
    /// `ConsentStore::sync_batch`, each reply through `apply_sync_reply`; with nothing left to
    /// send, the erasure notices through `apply_erasure_notices` (and what they erased goes out
    /// too). Returns the subjects erased on this device.
    pub fn sync_as_app(&self, server: &Server) -> Vec<String> {
        let mut erased = Vec::new();
        let mut asked = false;
        loop {
            let Some(batch) = self.store.sync_batch(&self.name, 50).unwrap() else {
                if asked {
                    return erased;
                }
                asked = true;
                let mut r = agent()
                    .get(&format!("{}/v1/devices/{}/erasures", server.url, self.name))
                    .header("authorization", &format!("Bearer {}", self.token))
                    .call()
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
                erased.extend(self.store.apply_erasure_notices(&r.body_mut().read_to_string().unwrap()).unwrap());
                continue;
            };
            let body: Value = serde_json::from_str(&batch.json).unwrap();
            let reply = post(&format!("{}/v1/devices/{}/batches", server.url, self.name), &self.token, &body);
            assert_eq!(reply.status, 200, "{}", reply.text);
            erased.extend(self.store.apply_sync_reply(&batch, &reply.text).unwrap().erased_subjects);
        }
    }

    /// Sends the whole outbox.
    pub fn sync_all(&self, server: &Server) {
        while !self.store.pending_sync(1).unwrap().is_empty() {
            let r = self.sync_once(server, 50);
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }
}

/// The setup most tests start from: a server on a fresh PostgreSQL, and one device, `phone`
/// (clock at 2026-03-01T10:00:00Z), that synced alice's `photos_media` grant. Bind every field
/// (`_name` for an unused one, never `_`): they must live to the end of the test.
pub struct AliceGrantedOnPhone {
    pub pg: Pg,
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub phone: Device,
}

impl AliceGrantedOnPhone {
    /// Starts PostgreSQL and the server, records and syncs the grant.
    pub fn start() -> AliceGrantedOnPhone {
        let pg = Pg::start();
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&pg, dir.path());
        let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
        phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
        phone.sync_all(&server);
        AliceGrantedOnPhone { pg, dir, server, phone }
    }
}

/// The built-in catalog with one more consent category (`health_data`) and a feature needing it:
/// what an app a release ahead of the server runs.
pub fn newer_policy() -> consentkit_core::Policy {
    let mut catalog: Value = serde_json::from_str(&consentkit_core::Policy::builtin().to_json()).unwrap();
    catalog["version"] = json!("2027-01-01");
    catalog["categories"].as_array_mut().unwrap().push(json!({
        "id": "health_data", "title": "Health data", "description": "Steps and heart rate.", "legal_basis": "consent", "retention": "P6Y",
    }));
    catalog["features"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "id": "health_sync", "title": "Sync health data", "categories": ["health_data"] }));
    consentkit_core::Policy::from_json(&catalog.to_string()).unwrap()
}
