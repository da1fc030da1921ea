//! Billing settings: the scheduler's calendar, the seller printed on invoices, and Stripe
//! (`DOCKET_STRIPE_*`; without a secret key invoices are kept in Docket only).

use super::Reader;
use crate::billing::margins::{CostModel, DEFAULT_COST_MODEL};
use crate::secret::Secret;
use std::time::Duration;

/// Stripe's API.
pub const STRIPE_API_BASE: &str = "https://api.stripe.com";

/// Billing settings.
#[derive(Debug, Clone)]
pub struct BillingConfig {
    /// How often the leading scheduler looks at the calendar (`DOCKET_CALENDAR_INTERVAL_SECS`).
    pub calendar_interval: Duration,
    /// How often a scheduler that does not lead tries to (`DOCKET_LEADER_POLL_MS`).
    pub leader_poll: Duration,
    /// Complete months looked back at for invoices never made (`DOCKET_BILLING_CATCH_UP_MONTHS`).
    pub catch_up_months: u32,
    /// Seller name printed on invoices (`DOCKET_SELLER_NAME`).
    pub seller_name: String,
    /// Seller address lines, `|`-separated (`DOCKET_SELLER_ADDRESS`).
    pub seller_address: Vec<String>,
    /// Stripe, when configured.
    pub stripe: Option<StripeConfig>,
    /// What Docket's resources cost (`DOCKET_COST_MODEL`), for the margin report.
    pub cost_model: CostModel,
    /// Days invoices and the usage ledger are kept after a deletion
    /// (`DOCKET_LEDGER_RETENTION_DAYS`, default ten years: commercial bookkeeping law).
    pub ledger_retention_days: u32,
    /// How long a confirmed tenant deletion waits, the tenant suspended and the request
    /// cancellable, before the sweep starts (`DOCKET_TENANT_DELETION_GRACE_SECS`, default
    /// seven days; 0 starts it at the calendar's next step).
    pub tenant_deletion_grace: Duration,
    /// How often the calendar signs every audit chain's head into object storage
    /// (`DOCKET_AUDIT_CHECKPOINT_SECS`, default hourly).
    pub audit_checkpoint_interval: Duration,
}

/// Stripe settings.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// Secret key (`DOCKET_STRIPE_SECRET_KEY[_FILE]`), `sk_test_…` in test mode.
    pub secret_key: Secret<String>,
    /// API base (`DOCKET_STRIPE_API_BASE`, default Stripe's).
    pub api_base: String,
    /// Webhook signing secret (`DOCKET_STRIPE_WEBHOOK_SECRET[_FILE]`, `whsec_…`).
    pub webhook_secret: Option<Secret<String>>,
    /// Oldest webhook timestamp accepted (`DOCKET_STRIPE_WEBHOOK_TOLERANCE_SECS`).
    pub webhook_tolerance: Duration,
}

impl Reader<'_> {
    /// The `DOCKET_*` billing variables.
    pub(super) fn billing(&mut self) -> BillingConfig {
        let stripe = match self.secret("DOCKET_STRIPE_SECRET_KEY") {
            Some(secret_key) => {
                let api_base = self
                    .string("DOCKET_STRIPE_API_BASE", STRIPE_API_BASE)
                    .trim_end_matches('/')
                    .to_owned();
                if !(api_base.starts_with("https://") || api_base.starts_with("http://127.0.0.1")) {
                    self.fail(
                        "DOCKET_STRIPE_API_BASE",
                        "must be an https:// URL (or http://127.0.0.1:… for a local emulator)",
                    );
                }
                Some(StripeConfig {
                    secret_key,
                    api_base,
                    webhook_secret: self.secret("DOCKET_STRIPE_WEBHOOK_SECRET"),
                    webhook_tolerance: Duration::from_secs(self.ranged(
                        "DOCKET_STRIPE_WEBHOOK_TOLERANCE_SECS",
                        300,
                        1,
                        86_400,
                    )),
                })
            }
            None => None,
        };
        let spec = self.string("DOCKET_COST_MODEL", DEFAULT_COST_MODEL);
        let cost_model = CostModel::parse(&spec).unwrap_or_else(|e| {
            self.fail("DOCKET_COST_MODEL", &format!("{e} (expected kind=cents,…)"));
            CostModel::parse(DEFAULT_COST_MODEL).expect("the default parses")
        });
        BillingConfig {
            cost_model,
            calendar_interval: Duration::from_secs(self.ranged("DOCKET_CALENDAR_INTERVAL_SECS", 60, 1, 3600)),
            leader_poll: Duration::from_millis(self.ranged("DOCKET_LEADER_POLL_MS", 2000, 50, 60_000)),
            catch_up_months: self.ranged("DOCKET_BILLING_CATCH_UP_MONTHS", 3, 1, 24) as u32,
            ledger_retention_days: self.ranged("DOCKET_LEDGER_RETENTION_DAYS", 3653, 1, 36525) as u32,
            audit_checkpoint_interval: Duration::from_secs(self.ranged(
                "DOCKET_AUDIT_CHECKPOINT_SECS",
                3600,
                10,
                86_400,
            )),
            tenant_deletion_grace: Duration::from_secs(self.ranged(
                "DOCKET_TENANT_DELETION_GRACE_SECS",
                7 * 86_400,
                0,
                90 * 86_400,
            )),
            seller_name: self.string("DOCKET_SELLER_NAME", "Docket"),
            seller_address: self
                .string("DOCKET_SELLER_ADDRESS", "")
                .split('|')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            stripe,
        }
    }
}
