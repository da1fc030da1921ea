//! An invoice as a PDF a finance team files: seller, customer, invoice number, period,
//! dates, lines, total. Drawn with lopdf (the PDF library the parser already uses) in the
//! standard Helvetica and Courier fonts, so no font file ships; amounts are set in Courier
//! so they right-align by character count. Long descriptions are cut to fit the column and
//! long invoices continue on further pages.

use super::invoice::Invoice;
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};

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

/// Rendering failed (lopdf could not encode the document).
#[derive(Debug, thiserror::Error)]
#[error("could not render the invoice PDF: {0}")]
pub struct PdfError(String);

/// `12345` cents in `usd` → `123.45 USD`.
pub fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02} {}", c / 100, c % 100, currency.to_uppercase())
}

/// Text as the WinAnsi bytes the standard fonts draw (characters outside Latin-1 as `?`).
fn text(s: &str) -> Object {
    let bytes: Vec<u8> = s
        .chars()
        .map(|c| if (c as u32) < 256 { c as u8 } else { b'?' })
        .collect();
    Object::String(bytes, lopdf::StringFormat::Literal)
}

/// One page's drawing operations.
struct Page {
    ops: Vec<Operation>,
}

impl Page {
    fn new() -> Self {
        Self { ops: Vec::new() }
    }

    fn put(&mut self, font: &str, size: f32, x: f32, y: f32, s: &str) {
        self.ops.extend([
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec![font.into(), size.into()]),
            Operation::new("Td", vec![x.into(), y.into()]),
            Operation::new("Tj", vec![text(s)]),
            Operation::new("ET", vec![]),
        ]);
    }

    /// Courier at `size` is 0.6 × size wide per character: right-aligned at `right`.
    fn put_right(&mut self, size: f32, right: f32, y: f32, s: &str) {
        let width = s.chars().count() as f32 * size * 0.6;
        self.put("F2", size, right - width, y, s);
    }

    fn rule(&mut self, y: f32) {
        self.ops.extend([
            Operation::new("w", vec![0.5.into()]),
            Operation::new("m", vec![50.into(), y.into()]),
            Operation::new("l", vec![545.into(), y.into()]),
            Operation::new("S", vec![]),
        ]);
    }
}

fn cut(s: &str, max: usize) -> String {
    match s.chars().count() > max {
        true => format!("{}...", s.chars().take(max - 3).collect::<String>()),
        false => s.to_owned(),
    }
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

fn save(pages: Vec<Page>) -> Result<Vec<u8>, PdfError> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font = |base: &str| {
        dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => base.to_owned(), "Encoding" => "WinAnsiEncoding" }
    };
    let f1 = doc.add_object(font("Helvetica"));
    let f1b = doc.add_object(font("Helvetica-Bold"));
    let f2 = doc.add_object(font("Courier"));
    let resources = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => f1, "F1B" => f1b, "F2" => f2 },
    });
    let mut kids = Vec::new();
    for page in pages {
        let content = Content { operations: page.ops };
        let bytes = content.encode().map_err(|e| PdfError(e.to_string()))?;
        let content_id = doc.add_object(Stream::new(dictionary! {}, bytes));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id, "Resources" => resources,
        });
        kids.push(Object::from(page_id));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).map_err(|e| PdfError(e.to_string()))?;
    Ok(out)
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
