//! `docketctl`'s command line: every command and its arguments (clap), one enum per
//! command group. `main.rs` dispatches them.

use clap::{Parser, Subcommand};
use docket_platform::ids::TenantId;

#[derive(Parser)]
#[command(name = "docketctl", about = "Operate a Docket deployment")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Apply pending database migrations (owner role).
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage platform operators.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Manage access-token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Audit trail tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Incident switches: turn an endpoint class off globally or for one tenant.
    #[command(subcommand)]
    Switch(SwitchCommand),
    /// Billing runs.
    #[command(subcommand)]
    Billing(BillingCommand),
    /// Quarterly access reviews.
    #[command(subcommand)]
    AccessReview(AccessReviewCommand),
    /// Data-portability export packages.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Deletions: what one would remove.
    #[command(subcommand)]
    Deletion(DeletionCommand),
    /// Deletion certificates.
    #[command(subcommand)]
    Certificate(CertificateCommand),
    /// Import a folder of documents into a tenant, with a live progress bar (the feeder in
    /// docket-scheduler moves them through the pipeline).
    Import {
        /// The tenant (slug or id).
        #[arg(long)]
        tenant: String,
        /// Return once the files are stored, without waiting for processing.
        #[arg(long)]
        no_wait: bool,
        /// Longest wait for processing, in seconds.
        #[arg(long, default_value_t = 86_400)]
        timeout: u64,
        /// The folder (read recursively; hidden files skipped).
        folder: std::path::PathBuf,
    },
    /// Re-chunk and re-index documents made by older chunking rules (all active tenants,
    /// or one), with a live progress bar; documents stay ready and answering meanwhile,
    /// and running it again resumes.
    Reindex {
        /// The tenant (slug or id); every active tenant when absent.
        #[arg(long)]
        tenant: Option<String>,
        /// Return once queued, without waiting.
        #[arg(long)]
        no_wait: bool,
        /// Longest wait, in seconds.
        #[arg(long, default_value_t = 86_400)]
        timeout: u64,
    },
}

#[derive(Subcommand)]
pub(crate) enum ExportCommand {
    /// Verify a downloaded package offline: signature, every checksum, every count, and the
    /// audit chain inside it. Exits 3 naming every problem.
    Verify {
        /// The package's folder (where manifest.json is).
        dir: std::path::PathBuf,
        /// The signing keys to trust: a copy of /.well-known/docket-keys.json (without it,
        /// the deployment's keys are read from its database).
        #[arg(long)]
        public_key: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum DeletionCommand {
    /// The dry run of deleting a document, or without --document the whole tenant: per
    /// store, what would be removed (nothing is).
    Plan {
        /// The tenant (slug or id).
        #[arg(long)]
        tenant: String,
        /// The document's id (absent: the whole tenant).
        #[arg(long)]
        document: Option<uuid::Uuid>,
    },
}

#[derive(Subcommand)]
pub(crate) enum CertificateCommand {
    /// Verify a deletion certificate offline: its format and its signature. Exits 3 naming
    /// every problem.
    Verify {
        /// The certificate file (as `GET /v1/deletions/{id}/certificate` returned it).
        file: std::path::PathBuf,
        /// The signing keys to trust: a copy of /.well-known/docket-keys.json (without it,
        /// the deployment's keys are read from its database).
        #[arg(long)]
        public_key: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum AccessReviewCommand {
    /// Make and queue a quarter's reviews (every tenant, or one), as the scheduler does on
    /// the first day of the next quarter; failed ones are queued again.
    Run {
        /// The quarter, YYYYQn (e.g. 2026Q4).
        #[arg(long)]
        quarter: String,
        /// Only this tenant (slug or id).
        #[arg(long)]
        tenant: Option<String>,
        /// Return once queued, without waiting for the reports.
        #[arg(long)]
        no_wait: bool,
        /// Longest wait, in seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Check a signed report (GET /v1/access-reviews/{id}/report) offline.
    Verify {
        /// The report file.
        file: std::path::PathBuf,
        /// Trust these keys (a copy of /.well-known/docket-keys.json) instead of the
        /// deployment's; needs no deployment.
        #[arg(long)]
        public_key: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum BillingCommand {
    /// Invoice every tenant (or one) for a complete month, as the scheduler does on the 1st.
    Run {
        /// The month, YYYY-MM.
        #[arg(long)]
        period: String,
        /// Only this tenant (slug or id).
        #[arg(long)]
        tenant: Option<String>,
        /// Print what would be invoiced; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Return once queued, without waiting for the invoices.
        #[arg(long)]
        no_wait: bool,
        /// Longest wait, in seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Add a correction to a tenant's next invoice (an `adjustment` line; negative for a
    /// credit). A finalized invoice is never edited.
    Adjust {
        /// The tenant (slug or id).
        #[arg(long)]
        tenant: String,
        /// Minor units (cents); negative for a credit.
        #[arg(long, allow_hyphen_values = true)]
        amount_cents: i64,
        /// The invoice line's text.
        #[arg(long)]
        description: String,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum SwitchCommand {
    /// Turn a class (query, upload, read, admin) off.
    Set {
        #[arg(long)]
        class: String,
        /// Only this tenant (slug or id); everyone when absent.
        #[arg(long)]
        tenant: Option<String>,
        /// Shown to callers and kept in the audit trail.
        #[arg(long)]
        reason: String,
        /// Lifts itself after this many seconds.
        #[arg(long)]
        expires_in: Option<u64>,
    },
    /// Lift a switch.
    Lift {
        /// The switch id.
        id: uuid::Uuid,
    },
    /// The switches in force.
    List,
}

#[derive(Subcommand)]
pub(crate) enum TenantCommand {
    /// Create a tenant (and its first owner with --owner-email/--owner-password).
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "free")]
        plan: String,
        #[arg(long, default_value = "shared")]
        tier: String,
        #[arg(long)]
        owner_email: Option<String>,
        /// Prefer DOCKET_OWNER_PASSWORD in the environment to keep it out of shell history.
        #[arg(long, env = "DOCKET_OWNER_PASSWORD", hide_env_values = true)]
        owner_password: Option<String>,
    },
    /// List tenants.
    List,
    /// Move a tenant's vectors to another isolation tier (re-indexed from stored vectors,
    /// switched atomically, old placement purged; searches keep answering).
    Move {
        /// shared, dedicated or isolated.
        #[arg(long)]
        tier: String,
        /// Return once requested instead of waiting for the switch.
        #[arg(long)]
        no_wait: bool,
        /// Longest wait in seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// The tenant's slug or id.
        tenant: String,
    },
    /// Change a tenant's plan (limits and features apply from its next request).
    Plan {
        /// free, team, business, enterprise (or any plan row).
        #[arg(long)]
        plan: String,
        /// The tenant's slug or id.
        tenant: String,
    },
    /// Set a temporary rate limit for one endpoint class of a tenant.
    RateOverride {
        /// query, upload, read or admin.
        #[arg(long)]
        class: String,
        /// Sustained requests per minute.
        #[arg(long)]
        per_minute: u32,
        /// Requests allowed at once.
        #[arg(long)]
        burst: u32,
        /// Lifetime in seconds, after which the plan's limit applies again.
        #[arg(long)]
        expires_in: u64,
        /// Why (recorded in the audit trail).
        #[arg(long)]
        reason: String,
        /// The tenant's slug or id.
        tenant: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum OperatorCommand {
    /// Create an operator.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, env = "DOCKET_OPERATOR_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Retire the active signing key and create a new one.
    Rotate,
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Walk the hash chains and report the first broken link; with --checkpoints, also hold
    /// each chain against its latest signed checkpoint (tail truncation, rewrites).
    Verify {
        /// One tenant's chain; without it, the platform chain and every tenant's.
        #[arg(long)]
        tenant: Option<TenantId>,
        /// Check the signed checkpoints in object storage too.
        #[arg(long)]
        checkpoints: bool,
        /// Trust these keys (a copy of /.well-known/docket-keys.json) for the checkpoints
        /// instead of the deployment's.
        #[arg(long)]
        public_key: Option<std::path::PathBuf>,
        /// Verify an exported chain (GET /v1/audit-events/export) offline instead of the
        /// database's chains; needs no deployment.
        #[arg(long, conflicts_with_all = ["tenant", "checkpoints"])]
        file: Option<std::path::PathBuf>,
        /// With --file: a signed checkpoint of that chain (one item of GET
        /// /v1/audit-checkpoints, or the whole answer: its newest item), checked with
        /// --public-key.
        #[arg(long, requires_all = ["file", "public_key"])]
        checkpoint: Option<std::path::PathBuf>,
    },
}
