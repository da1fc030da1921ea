//! Hostile and broken files for the ingestion tests, generated here so that what each
//! contains sits next to what the tests check.

use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};

/// A PDF whose only page draws an image: no text at all (like a scan).
pub fn image_only_pdf() -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    // A 2×2 grey image.
    let image = Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => 2, "Height" => 2,
            "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
        },
        vec![0x00, 0x80, 0x80, 0xff],
    );
    let image_id = doc.add_object(image);
    let resources_id = doc.add_object(dictionary! { "XObject" => dictionary! { "Im1" => image_id } });
    let content = Content {
        operations: vec![
            Operation::new("q", vec![]),
            Operation::new(
                "cm",
                vec![500.into(), 0.into(), 0.into(), 700.into(), 40.into(), 60.into()],
            ),
            Operation::new("Do", vec!["Im1".into()]),
            Operation::new("Q", vec![]),
        ],
    };
    let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().expect("encode")));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id, "Resources" => resources_id,
    });
    saved_with_pages(doc, pages_id, vec![page_id.into()])
}

/// Adds the page tree (`pages_id` over `kids`, A4) and the catalog, and saves.
fn saved_with_pages(mut doc: Document, pages_id: lopdf::ObjectId, kids: Vec<Object>) -> Vec<u8> {
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save");
    out
}

/// A real contract encrypted with AES-256 and a user password, by `qpdf` (installed by
/// `scripts/test`).
pub fn encrypted_pdf(source: &std::path::Path) -> Vec<u8> {
    let out = tempfile::NamedTempFile::new().expect("tempfile");
    let status = std::process::Command::new("qpdf")
        .args(["--encrypt", "user-secret", "owner-secret", "256", "--"])
        .arg(source)
        .arg(out.path())
        .status()
        .expect("qpdf is installed (scripts/test installs it)");
    assert!(status.success(), "qpdf failed");
    std::fs::read(out.path()).expect("read")
}

/// The start of a Windows executable.
pub fn exe() -> Vec<u8> {
    let mut b = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
    b.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    b
}

/// A small, valid PDF that takes a long time to parse: `pages` pages sharing one compressed
/// content stream of `ops` text-showing operations each (a few kilobytes on disk, `pages ×
/// ops` operations for the parser). The kind of file a parse-time limit exists for.
pub fn slow_pdf(pages: usize, ops: usize) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut operations = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 12.into()]),
    ];
    for i in 0..ops {
        operations.push(Operation::new("Td", vec![0.into(), ((i % 2) as i64).into()]));
        operations.push(Operation::new("Tj", vec![Object::string_literal("clause")]));
    }
    operations.push(Operation::new("ET", vec![]));
    let mut content = Stream::new(dictionary! {}, Content { operations }.encode().expect("encode"));
    content.compress().expect("compress");
    let content_id = doc.add_object(content);
    let kids: Vec<Object> = (0..pages)
        .map(|_| {
            doc.add_object(dictionary! {
                "Type" => "Page", "Parent" => pages_id, "Contents" => content_id, "Resources" => resources_id,
            })
            .into()
        })
        .collect();
    saved_with_pages(doc, pages_id, kids)
}
