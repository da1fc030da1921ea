//! Plain A4 documents a compliance or finance team files (invoices, access reviews), drawn
//! with lopdf (the PDF library the parser already uses) in the standard Helvetica and
//! Courier fonts, so no font file ships. `F1` is Helvetica, `F1B` Helvetica-Bold, `F2`
//! Courier (0.6 × size wide per character, so it right-aligns by character count).

use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};

/// Rendering failed (lopdf could not encode the document).
#[derive(Debug, thiserror::Error)]
#[error("could not render the PDF: {0}")]
pub struct PdfError(String);

/// Text as the WinAnsi bytes the standard fonts draw (characters outside Latin-1 as `?`).
fn text(s: &str) -> Object {
    let bytes: Vec<u8> = s
        .chars()
        .map(|c| if (c as u32) < 256 { c as u8 } else { b'?' })
        .collect();
    Object::String(bytes, lopdf::StringFormat::Literal)
}

/// One page's drawing operations (A4: 595 × 842 points, origin bottom left).
#[derive(Debug)]
pub struct Page {
    ops: Vec<Operation>,
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

impl Page {
    /// An empty page.
    pub fn new() -> Self {
        Self { ops: Vec::new() }
    }

    /// `s` in `font` at `size`, its baseline starting at (`x`, `y`).
    pub fn put(&mut self, font: &str, size: f32, x: f32, y: f32, s: &str) {
        self.ops.extend([
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec![font.into(), size.into()]),
            Operation::new("Td", vec![x.into(), y.into()]),
            Operation::new("Tj", vec![text(s)]),
            Operation::new("ET", vec![]),
        ]);
    }

    /// Courier at `size`, right-aligned at `right`.
    pub fn put_right(&mut self, size: f32, right: f32, y: f32, s: &str) {
        let width = s.chars().count() as f32 * size * 0.6;
        self.put("F2", size, right - width, y, s);
    }

    /// A thin horizontal rule across the text column at `y`.
    pub fn rule(&mut self, y: f32) {
        self.ops.extend([
            Operation::new("w", vec![0.5.into()]),
            Operation::new("m", vec![50.into(), y.into()]),
            Operation::new("l", vec![545.into(), y.into()]),
            Operation::new("S", vec![]),
        ]);
    }
}

/// `s` cut to `max` characters, marked with `...` when cut.
pub fn cut(s: &str, max: usize) -> String {
    match s.chars().count() > max {
        true => format!("{}...", s.chars().take(max.saturating_sub(3)).collect::<String>()),
        false => s.to_owned(),
    }
}

/// A document written top to bottom: lines flow onto new pages as they fill.
#[derive(Debug)]
pub struct Flow {
    pages: Vec<Page>,
    y: f32,
}

impl Default for Flow {
    fn default() -> Self {
        Self::new()
    }
}

impl Flow {
    /// Top margin of every page.
    const TOP: f32 = 790.0;
    /// Lowest baseline before a new page.
    const BOTTOM: f32 = 60.0;

    /// A document with one empty page.
    pub fn new() -> Self {
        Self {
            pages: vec![Page::new()],
            y: Self::TOP,
        }
    }

    fn room(&mut self, needed: f32) {
        if self.y - needed < Self::BOTTOM {
            self.pages.push(Page::new());
            self.y = Self::TOP;
        }
    }

    /// A title line.
    pub fn title(&mut self, s: &str) {
        self.room(24.0);
        let y = self.y;
        self.page().put("F1B", 16.0, 50.0, y, s);
        self.y -= 24.0;
    }

    /// A section heading with a rule under it.
    pub fn heading(&mut self, s: &str) {
        self.room(40.0);
        self.y -= 8.0;
        let y = self.y;
        let p = self.page();
        p.put("F1B", 11.0, 50.0, y, s);
        p.rule(y - 4.0);
        self.y -= 18.0;
    }

    /// Body text at `x`, wrapped at word boundaries to the page width (a word longer than
    /// a line is cut).
    pub fn line(&mut self, x: f32, s: &str) {
        let max = ((545.0 - x) / 4.6) as usize;
        let mut current = String::new();
        for word in s.split_whitespace() {
            if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > max {
                self.emit(x, &current);
                current.clear();
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
        self.emit(x, &current);
    }

    fn emit(&mut self, x: f32, s: &str) {
        self.room(12.0);
        let max = ((545.0 - x) / 4.6) as usize;
        let y = self.y;
        self.page().put("F1", 9.0, x, y, &cut(s, max));
        self.y -= 12.0;
    }

    /// Columns of one table row at the given x positions (each cut to its column).
    pub fn row(&mut self, bold: bool, cells: &[(f32, &str)]) {
        self.room(12.0);
        let y = self.y;
        let font = if bold { "F1B" } else { "F1" };
        for (i, (x, s)) in cells.iter().enumerate() {
            let next = cells.get(i + 1).map(|c| c.0).unwrap_or(545.0);
            let max = ((next - x - 4.0) / 4.6).max(3.0) as usize;
            self.page().put(font, 9.0, *x, y, &cut(s, max));
        }
        self.y -= 12.0;
    }

    /// Vertical space.
    pub fn gap(&mut self, points: f32) {
        self.y -= points;
    }

    fn page(&mut self) -> &mut Page {
        self.pages.last_mut().expect("a flow has a page")
    }

    /// The document's bytes.
    pub fn finish(self) -> Result<Vec<u8>, PdfError> {
        save(self.pages)
    }
}

/// The document of `pages`.
pub fn save(pages: Vec<Page>) -> Result<Vec<u8>, PdfError> {
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
