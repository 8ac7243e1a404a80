//! `consentkit-server`: serve the API, migrate the schema, make keys and tokens.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use consentkit_core::Policy;
use consentkit_server::api::{router, App};
use consentkit_server::auth::Tokens;
use consentkit_server::config::{hash_token, Config};
use consentkit_server::db::{migrate, Pools};
use consentkit_server::keys::{random_bytes, Keys};

const USAGE: &str = "usage:
  consentkit-server serve --config FILE        serve the API (prints the address it listens on)
  consentkit-server migrate --owner CONNINFO   create the tables and database roles (as the owner)
  consentkit-server keygen --dir DIR           write subject.key, signing.key and signing.pub (0600)
  consentkit-server new-token                  print a fresh token and the sha256 the config stores
  consentkit-server hash-token TOKEN           print the sha256 of a token
  consentkit-server public-key --config FILE   print the public key that verifies signed heads
  consentkit-server --help | --version";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("consentkit-server: {message}");
            ExitCode::from(2)
        }
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Result<&'a str, String> {
    let i = args.iter().position(|a| a == name).ok_or_else(|| format!("missing {name}\n{USAGE}"))?;
    args.get(i + 1).map(String::as_str).ok_or_else(|| format!("{name} needs a value"))
}

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("serve") => serve(&Config::load(Path::new(flag(args, "--config")?))?),
        Some("migrate") => {
            runtime()?.block_on(migrate(flag(args, "--owner")?))?;
            // Said on success (a silent exit left a new operator guessing); never the conninfo (a password).
            println!(
                "migrated: tables, consentkit_device_erase and the roles consentkit_ingest, consentkit_support, \
                 consentkit_dpo and consentkit_auditor are in place (the roles have no password: see the README)"
            );
            Ok(())
        }
        Some("keygen") => keygen(&PathBuf::from(flag(args, "--dir")?)),
        Some("new-token") => {
            let token = consentkit_core::chain::hex(&random_bytes::<32>()?);
            println!("token  {token}\nsha256 {}", hash_token(&token));
            Ok(())
        }
        Some("hash-token") => {
            let token = args.get(1).ok_or("hash-token needs the token")?;
            println!("{}", hash_token(token));
            Ok(())
        }
        Some("public-key") => {
            let keys = Keys::load(&Config::load(Path::new(flag(args, "--config")?))?)?;
            println!("{}", consentkit_core::chain::hex(keys.public().as_bytes()));
            Ok(())
        }
        Some("--help" | "-h" | "help") => {
            println!("consentkit-server {}: the ConsentKit server ledger and support console\n{USAGE}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some("--version" | "-V") => {
            println!("consentkit-server {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{}'\n{USAGE}", other.escape_debug())),
        None => Err(USAGE.to_string()),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("cannot start the runtime: {e}"))
}

fn keygen(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let subject = random_bytes::<32>()?;
    let seed = random_bytes::<32>()?;
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let hex = consentkit_core::chain::hex;
    let files = [("subject.key", hex(&subject)), ("signing.key", hex(&seed)), ("signing.pub", hex(public.as_bytes()))];
    // All or nothing: a new subject key beside an old signing key would pseudonymise anew.
    if let Some(path) = files.iter().map(|(name, _)| dir.join(name)).find(|p| p.exists()) {
        return Err(format!("{} exists; keygen never overwrites a key and wrote nothing", path.display()));
    }
    for (name, text) in files {
        write_private(&dir.join(name), &text)?;
    }
    println!("wrote subject.key, signing.key and signing.pub in {}", dir.display());
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(f, "{text}").map_err(|e| format!("{}: {e}", path.display()))
}

fn serve(config: &Config) -> Result<(), String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let level = tracing_subscriber::EnvFilter::try_from_env("CONSENTKIT_LOG").unwrap_or_else(|_| "info".into());
    // The database driver logs every statement's parameter values at debug (scopes, device ids):
    // whatever CONSENTKIT_LOG asks for, nothing of it below info reaches the log.
    let no_values =
        tracing_subscriber::filter::filter_fn(|m| !(m.target().starts_with("tokio_postgres") && *m.level() > tracing::Level::INFO));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())) // no colour codes in a log file
                .with_filter(level)
                .with_filter(no_values),
        )
        .init();
    let keys = Keys::load(config)?;
    let policy = match &config.policy_file {
        None => Policy::builtin(),
        Some(p) => Policy::from_json(&std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?)
            .map_err(|e| format!("{}: {e}", p.display()))?,
    };
    let rt = runtime()?;
    rt.block_on(async {
        let app = Arc::new(App {
            pools: Pools::new(&config.database)?,
            keys,
            policy: Arc::new(policy),
            tokens: Tokens::new(&config.tokens),
            max_body: config.max_body_bytes,
            console: consentkit_server::console::Console::new(std::time::Duration::from_secs(config.console_session_seconds))
                .trusting_proxies(config.console_trusted_proxies.clone()),
        });
        let listener =
            tokio::net::TcpListener::bind(&config.listen).await.map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("consentkit-server listening on http://{addr}");
        let _ = std::io::stdout().flush();
        // With the peer's address: the console's sign-in lockout counts failures per client address.
        let service = router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).with_graceful_shutdown(shutdown()).await.map_err(|e| format!("server: {e}"))
    })
}

async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
