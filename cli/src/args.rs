//! The command line contract (names are relied on by scripts: keep them).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::failure::EXIT_CODES_HELP;

/// consentkit: ConsentKit's support tool. What has this user consented to, since when,
/// and why is this feature off?
#[derive(Debug, Parser)]
#[command(name = "consentkit", version, about, long_about = None, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// The store file. Queries need it to exist (a missing one is exit 3); a write on a path with no
    /// file creates a new store there and says so on stderr, naming the path; `init` creates one on purpose.
    #[arg(long, global = true, env = "CONSENTKIT_DB", default_value = "consentkit.db")]
    pub db: PathBuf,
    /// A policy catalog JSON file (default: the built-in UCAnywhere catalog).
    #[arg(long, global = true)]
    pub policy: Option<PathBuf>,
    /// Machine-readable JSON on stdout: one object with a `schema_version` field (see README).
    #[arg(long, global = true)]
    pub json: bool,
    /// Nothing on stdout and no progress; errors still go to stderr and the exit code answers.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// The clock, as RFC 3339 (for scripts and tests). A write saves its time as the store's, which
    /// never goes back: a future --now on a store an app uses makes its grants fail until then.
    #[arg(long, global = true)]
    pub now: Option<String>,
    /// A consentkit-server URL: `status`, `check`, `history`, `export` and `erase` ask it (across the
    /// subject's devices) instead of the local file; `sync` sends the local outbox to it.
    #[arg(long, global = true, env = "CONSENTKIT_SERVER")]
    pub server: Option<String>,
    /// The bearer token for --server.
    #[arg(long, global = true, env = "CONSENTKIT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// A decision's arguments.
#[derive(Debug, Args)]
pub struct DecisionArgs {
    /// The subject (account id).
    pub subject: String,
    /// The category id.
    pub category: String,
    /// One item (e.g. a contact id) for per-item consent.
    #[arg(long)]
    pub scope: Option<String>,
    /// Where the decision came from: onboarding, settings, os_settings, support, guardian.
    #[arg(long, default_value = "support")]
    pub source: String,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new, empty store at --db for --policy; refused if a file is already there. (A
    /// write on a missing file creates the store too, and says so on stderr.)
    Init,
    /// List the categories (legal basis, OS permission, retention) and features.
    Policy,
    /// Record a grant (needs --source onboarding|settings|guardian: support may not grant).
    Grant(DecisionArgs),
    /// Record a refusal.
    Refuse(DecisionArgs),
    /// Record a withdrawal.
    Withdraw(DecisionArgs),
    /// Record an objection (legitimate interest).
    Object(DecisionArgs),
    /// Record the withdrawal of an objection.
    WithdrawObjection(DecisionArgs),
    /// Record the device's OS permission state.
    Os {
        /// The permission's snake_case id: contacts, photos, camera, microphone, location, notifications,
        /// calendar, app_tracking_transparency, or any other id a catalog names.
        permission: String,
        /// granted, limited, provisional, denied, not_determined or restricted.
        state: String,
    },
    /// Mark a subject under the age of digital consent.
    UnderAge {
        /// The subject.
        subject: String,
        /// Remove the mark instead.
        #[arg(long)]
        clear: bool,
        /// Where the information came from.
        #[arg(long, default_value = "support")]
        source: String,
    },
    /// Each category's status and since when.
    Status {
        /// The subject.
        subject: String,
    },
    /// May FEATURE run for SUBJECT? Exit 0 if allowed, 1 if denied, with every reason.
    Check {
        /// The subject.
        subject: String,
        /// The feature id.
        feature: String,
        /// The single item, for per-item features.
        #[arg(long)]
        scope: Option<String>,
    },
    /// Every event, oldest first, with the device's OS permission changes.
    History {
        /// The subject.
        subject: String,
    },
    /// The portable JSON document of a subject (always JSON).
    Export {
        /// The subject.
        subject: String,
    },
    /// Import an exported document into this store.
    Import {
        /// The export file.
        file: PathBuf,
    },
    /// Erase a subject for good, printing the erasure receipt.
    Erase {
        /// The subject.
        subject: String,
        /// Where the request came from: support (letter, phone) or settings (in the app).
        #[arg(long, default_value = "support")]
        source: String,
    },
    /// Retention purge: remove events past their retention period.
    Purge,
    /// Check the hash chain: exit 0 intact, 3 broken (naming the first bad sequence number).
    Verify,
    /// Send the store's outbox to --server in batches and acknowledge what it stored.
    Sync(crate::remote::SyncArgs),
    /// Check a server's signed head against this device's chain (--db or --chain), offline.
    VerifyReceipt(crate::remote::VerifyArgs),
    /// A guided walk through a UCAnywhere user's life on a fresh demo database: always
    /// ./consentkit-demo.db, reset on each run (--db and CONSENTKIT_DB are not used, so a real
    /// store is never touched).
    Demo,
    /// Print a shell completion script (e.g. `consentkit completions bash > /etc/bash_completion.d/consentkit`).
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Print the man page (roff), e.g. `consentkit man > consentkit.1`.
    Man,
}

/// The shells `consentkit completions` writes scripts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU Bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}
