//! An invoice as a PDF a finance team files: seller, customer, invoice number, period,
//! dates, lines, total. Drawn with lopdf (the PDF library the parser already uses) in the
//! standard Helvetica and Courier fonts, so no font file ships; amounts are set in Courier
//! so they right-align by character count. Long descriptions are cut to fit the column and
//! long invoices continue on further pages.

use super::invoice::Invoice;
pub use crate::pdf::PdfError;
use crate::pdf::{Page, cut, save};

/// Who issues the invoice, as printed on it.
#[derive(Debug, Clone)]
pub struct Seller {
    /// Legal name.
    pub name: String,
    /// Address lines.
    pub address: Vec<String>,
}

impl Default for Seller {
    fn default() -> Self {
        Self {
            name: "Docket".into(),
            address: vec!["Document question answering".into()],
        }
    }
}

/// Who is billed.
#[derive(Debug, Clone)]
pub struct Customer {
    /// The tenant's name.
    pub name: String,
    /// Its slug (the account reference).
    pub slug: String,
}

/// `12345` cents in `usd` → `123.45 USD`.
pub fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02} {}", c / 100, c % 100, currency.to_uppercase())
}

/// Renders `inv` (with its lines) for `customer`, issued by `seller`.
pub fn render(inv: &Invoice, seller: &Seller, customer: &Customer) -> Result<Vec<u8>, PdfError> {
    let mut pages = vec![Page::new()];
    let p = pages.last_mut().expect("a page");
    p.put("F1B", 20.0, 50.0, 780.0, "Invoice");
    p.put("F1B", 11.0, 50.0, 750.0, &seller.name);
    let mut y = 736.0;
    for line in &seller.address {
        p.put("F1", 10.0, 50.0, y, line);
        y -= 13.0;
    }
    let facts = [
        ("Invoice number", inv.number.clone()),
        (
            "Period",
            format!(
                "{} to {}",
                inv.period.first_day(),
                inv.period.next().first_day().pred_opt().unwrap_or_default()
            ),
        ),
        ("Issued", inv.created_at.format("%Y-%m-%d").to_string()),
        ("Status", inv.status.as_str().replace('_', " ")),
    ];
    let mut fy = 750.0;
    for (k, v) in facts {
        p.put("F1", 10.0, 330.0, fy, k);
        p.put("F1", 10.0, 430.0, fy, &v);
        fy -= 14.0;
    }
    y = y.min(fy) - 20.0;
    p.put("F1B", 10.0, 50.0, y, "Bill to");
    p.put("F1", 10.0, 50.0, y - 14.0, &customer.name);
    p.put("F1", 10.0, 50.0, y - 28.0, &format!("Account: {}", customer.slug));
    y -= 60.0;
    let header = |p: &mut Page, y: f32| {
        p.put("F1B", 10.0, 50.0, y, "Description");
        p.put("F1B", 10.0, 330.0, y, "Quantity");
        p.put("F1B", 10.0, 490.0, y, "Amount");
        p.rule(y - 5.0);
    };
    header(p, y);
    y -= 20.0;
    for l in &inv.lines {
        if y < 90.0 {
            pages.push(Page::new());
            y = 780.0;
            header(pages.last_mut().expect("a page"), y);
            y -= 20.0;
        }
        let p = pages.last_mut().expect("a page");
        p.put("F1", 10.0, 50.0, y, &cut(&l.description, 48));
        p.put("F1", 10.0, 330.0, y, &format!("{} {}", l.quantity, l.unit));
        p.put_right(10.0, 545.0, y, &money(l.amount_cents, &inv.currency));
        y -= 16.0;
    }
    let p = pages.last_mut().expect("a page");
    p.rule(y + 8.0);
    p.put("F1B", 11.0, 330.0, y - 8.0, "Total");
    p.put_right(11.0, 545.0, y - 8.0, &money(inv.total_cents, &inv.currency));
    p.put(
        "F1",
        8.0,
        50.0,
        50.0,
        "Amounts in minor units of the plan's currency, rounded half up to the cent. Usage lines are included in the plan.",
    );
    save(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_formats_minor_units() {
        assert_eq!(money(490_000, "usd"), "4900.00 USD");
        assert_eq!(money(5, "eur"), "0.05 EUR");
        assert_eq!(money(-1250, "usd"), "-12.50 USD");
    }
}
