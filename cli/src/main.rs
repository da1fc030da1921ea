//! `docketctl`: operator commands. Prints JSON on success; exits non-zero with a sentence
//! on failure (and 3 when `audit verify` finds a broken chain).

use clap::Parser;
use docket_platform::audit::Auditor;
use docket_platform::config::Config;
use docket_platform::db::ControlDb;
use docketctl::TenantCreate;
use std::process::ExitCode;

mod args;

use args::{
    AccessReviewCommand, AuditCommand, BillingCommand, CertificateCommand, Cli, Command, DeletionCommand,
    ExportCommand, KeysCommand, OperatorCommand, SwitchCommand, TenantCommand,
};

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
