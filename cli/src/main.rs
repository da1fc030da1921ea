//! `docketctl`: operator commands. Prints JSON on success; exits non-zero with a sentence
//! on failure (and 3 when `audit verify` finds a broken chain).

use clap::{Parser, Subcommand};
use docket_platform::audit::Auditor;
use docket_platform::config::Config;
use docket_platform::db::ControlDb;
use docket_platform::ids::TenantId;
use docketctl::TenantCreate;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "docketctl", about = "Operate a Docket deployment")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
enum ExportCommand {
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
enum DeletionCommand {
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
enum CertificateCommand {
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
enum AccessReviewCommand {
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
enum BillingCommand {
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
enum SwitchCommand {
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
enum TenantCommand {
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
enum OperatorCommand {
    /// Create an operator.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, env = "DOCKET_OPERATOR_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Retire the active signing key and create a new one.
    Rotate,
}

#[derive(Subcommand)]
enum AuditCommand {
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Verifying a package with a pinned key needs no deployment: it runs anywhere.
    if let Command::Export(ExportCommand::Verify {
        dir,
        public_key: Some(key),
    }) = &cli.command
    {
        return print(docketctl::export_verify(None, dir, Some(key)).await);
    }
    if let Command::Certificate(CertificateCommand::Verify {
        file,
        public_key: Some(key),
    }) = &cli.command
    {
        return print(docketctl::certificate_verify(None, file, Some(key)).await);
    }
    if let Command::Audit(AuditCommand::Verify {
        file: Some(file),
        checkpoint,
        public_key,
        ..
    }) = &cli.command
    {
        return print(docketctl::audit_verify_file(file, checkpoint.as_deref(), public_key.as_deref()).await);
    }
    if let Command::AccessReview(AccessReviewCommand::Verify {
        file,
        public_key: Some(key),
    }) = &cli.command
    {
        return print(docketctl::access_review_verify(None, file, Some(key)).await);
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("docketctl: {e}");
            return ExitCode::from(2);
        }
    };
    print(run(cli, &config).await)
}

/// Prints a command's JSON (exit 3 when it says `ok: false`) or its error.
fn print(result: anyhow::Result<serde_json::Value>) -> ExitCode {
    match result {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            if v.get("ok") == Some(&serde_json::Value::Bool(false)) {
                return ExitCode::from(3);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("docketctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, config: &Config) -> anyhow::Result<serde_json::Value> {
    let control = || ControlDb::connect_lazy(&config.database.control_url, 2);
    let auditor = Auditor::new(config.master_key.clone());
    match cli.command {
        Command::Migrate => docketctl::migrate(config).await,
        Command::Tenant(TenantCommand::Create {
            slug,
            name,
            plan,
            tier,
            owner_email,
            owner_password,
        }) => {
            let args = TenantCreate {
                slug,
                name,
                plan,
                tier,
                owner_email,
                owner_password,
            };
            docketctl::tenant_create(&control()?, &auditor, &args).await
        }
        Command::Tenant(TenantCommand::List) => docketctl::tenant_list(&control()?).await,
        Command::Tenant(TenantCommand::Move {
            tier,
            no_wait,
            timeout,
            tenant,
        }) => {
            let redis = docket_platform::redis_conn::Redis::new(&config.redis.url, &config.redis.prefix)?;
            let wait = (!no_wait).then(|| std::time::Duration::from_secs(timeout));
            docketctl::tenant_move(&control()?, &redis, &auditor, &tenant, &tier, wait).await
        }
        Command::Tenant(TenantCommand::Plan { plan, tenant }) => {
            docketctl::tenant_plan(&control()?, &auditor, &tenant, &plan).await
        }
        Command::Tenant(TenantCommand::RateOverride {
            class,
            per_minute,
            burst,
            expires_in,
            reason,
            tenant,
        }) => {
            let o = docketctl::RateOverride {
                class,
                per_minute,
                burst,
                expires_in: std::time::Duration::from_secs(expires_in),
                reason,
            };
            docketctl::tenant_rate_override(&control()?, &auditor, &tenant, &o).await
        }
        Command::Operator(OperatorCommand::Create { email, password }) => {
            docketctl::operator_create(&control()?, &auditor, &email, &password).await
        }
        Command::Keys(KeysCommand::Rotate) => docketctl::keys_rotate(&control()?, &auditor, config).await,
        Command::Switch(SwitchCommand::Set {
            class,
            tenant,
            reason,
            expires_in,
        }) => {
            let expires = expires_in.map(std::time::Duration::from_secs);
            docketctl::switch_set(&control()?, &auditor, &class, tenant.as_deref(), &reason, expires).await
        }
        Command::Switch(SwitchCommand::Lift { id }) => {
            docketctl::switch_lift(&control()?, &auditor, id).await
        }
        Command::Switch(SwitchCommand::List) => docketctl::switch_list(&control()?).await,
        Command::Audit(AuditCommand::Verify {
            tenant,
            checkpoints: false,
            ..
        }) => docketctl::audit_verify(&control()?, tenant).await,
        Command::Audit(AuditCommand::Verify {
            tenant, public_key, ..
        }) => docketctl::audit_verify_checkpoints(config, &control()?, tenant, public_key.as_deref()).await,
        Command::Export(ExportCommand::Verify { dir, public_key }) => {
            let control = match public_key {
                Some(_) => None,
                None => Some(control()?),
            };
            docketctl::export_verify(control.as_ref(), &dir, public_key.as_deref()).await
        }
        Command::Certificate(CertificateCommand::Verify { file, public_key }) => {
            let control = match public_key {
                Some(_) => None,
                None => Some(control()?),
            };
            docketctl::certificate_verify(control.as_ref(), &file, public_key.as_deref()).await
        }
        Command::Deletion(DeletionCommand::Plan { tenant, document }) => {
            docketctl::deletion_plan(config, &control()?, &tenant, document).await
        }
        Command::Billing(BillingCommand::Adjust {
            tenant,
            amount_cents,
            description,
            reason,
        }) => {
            let a = docket_platform::billing::corrections::NewAdjustment {
                amount_cents,
                description,
                reason,
            };
            docketctl::billing_adjust(&control()?, &auditor, &tenant, &a).await
        }
        Command::AccessReview(AccessReviewCommand::Run {
            quarter,
            tenant,
            no_wait,
            timeout,
        }) => {
            let wait = (!no_wait).then(|| std::time::Duration::from_secs(timeout));
            docketctl::access_review_run(config, &control()?, &quarter, tenant.as_deref(), wait).await
        }
        Command::AccessReview(AccessReviewCommand::Verify { file, public_key }) => {
            let control = match public_key {
                Some(_) => None,
                None => Some(control()?),
            };
            docketctl::access_review_verify(control.as_ref(), &file, public_key.as_deref()).await
        }
        Command::Billing(BillingCommand::Run {
            period,
            tenant,
            dry_run,
            no_wait,
            timeout,
        }) => {
            let wait = (!no_wait).then(|| std::time::Duration::from_secs(timeout));
            docketctl::billing_run(
                config,
                &control()?,
                &auditor,
                &period,
                tenant.as_deref(),
                dry_run,
                wait,
            )
            .await
        }
        Command::Import {
            tenant,
            no_wait,
            timeout,
            folder,
        } => {
            let wait = (!no_wait).then(|| std::time::Duration::from_secs(timeout));
            docketctl::import_folder(config, &control()?, &auditor, &tenant, &folder, wait).await
        }
        Command::Reindex {
            tenant,
            no_wait,
            timeout,
        } => {
            let wait = (!no_wait).then(|| std::time::Duration::from_secs(timeout));
            docketctl::reindex(config, &control()?, &auditor, tenant.as_deref(), wait).await
        }
    }
}
