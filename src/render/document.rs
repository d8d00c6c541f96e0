//! A rendered invoice's pages to PDF bytes (lopdf): a deflated content
//! stream a page, a Type 0 font for each face the pages use (its subset,
//! widths, `/CIDToGIDMap` and `/ToUnicode`), the document information, and
//! a document id derived from the invoice number, so the same invoice
//! gives the same bytes.

use chrono::NaiveDate;
use lopdf::{Dictionary, Document, Object, ObjectId, Stream, StringFormat, dictionary};
use sha2::{Digest, Sha256};

use super::canvas::{Canvas, PAGE_H, PAGE_W};
use super::font::{self, Face, FontObjects, UsedCodes, deflate};

/// The document information dictionary's entries.
pub(super) struct DocumentInfo {
    pub(super) title: String,
    pub(super) author: String,
    pub(super) creator: String,
    /// Creation and modification date (midnight UTC).
    pub(super) date: NaiveDate,
    /// What the document id is derived from (the invoice number).
    pub(super) identifier: String,
}

/// The pages, in order, as one PDF file.
pub(super) fn write_pdf(pages: Vec<Canvas>, info: &DocumentInfo) -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let fonts = add_fonts(&mut doc, &pages);
    let resources = doc.add_object(dictionary! { "Font" => fonts });
    let pages = add_pages(&mut doc, pages, resources);
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages });
    let info_id = doc.add_object(info_dictionary(info));
    let id = document_id(&info.identifier);
    doc.trailer.set("Root", catalog);
    doc.trailer.set("Info", info_id);
    doc.trailer.set("ID", vec![id.clone(), id]);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("writing a PDF to memory");
    bytes
}

/// The fonts the pages use, by resource name.
fn add_fonts(doc: &mut Document, pages: &[Canvas]) -> Dictionary {
    let (mut regular, mut bold) = (UsedCodes::default(), UsedCodes::default());
    for page in pages {
        regular.merge(&page.regular);
        bold.merge(&page.bold);
    }
    let mut fonts = Dictionary::new();
    for (face, used) in [(font::regular(), regular), (font::bold(), bold)] {
        let codes = used.codes();
        if !codes.is_empty() {
            let id = add_font(doc, face, &face.objects(codes));
            fonts.set(face.resource, id);
        }
    }
    fonts
}

/// The page tree: a page a canvas, its content deflated.
fn add_pages(doc: &mut Document, pages: Vec<Canvas>, resources: ObjectId) -> ObjectId {
    let tree = doc.new_object_id();
    let media_box: Vec<Object> = vec![0.into(), 0.into(), points(PAGE_W), points(PAGE_H)];
    let mut kids: Vec<Object> = Vec::with_capacity(pages.len());
    for page in pages {
        let content = doc.add_object(deflated_stream(&page.content));
        let page = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => tree,
            "MediaBox" => media_box.clone(),
            "Resources" => resources,
            "Contents" => content,
        });
        kids.push(page.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        tree,
        dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }.into(),
    );
    tree
}

/// A Type 0 font over the face's subset, CIDs being code points.
fn add_font(doc: &mut Document, face: &Face, objects: &FontObjects) -> ObjectId {
    let program = doc.add_object(Stream::new(
        dictionary! { "Filter" => "FlateDecode", "Length1" => objects.program_length as i64 },
        objects.program.clone(),
    ));
    let mut descriptor = face.descriptor(&objects.base_font);
    descriptor.set("FontFile2", program);
    let descriptor = doc.add_object(descriptor);
    let cid_to_gid = doc.add_object(Stream::new(
        dictionary! { "Filter" => "FlateDecode" },
        objects.cid_to_gid.clone(),
    ));
    let to_unicode = doc.add_object(Stream::new(
        dictionary! { "Filter" => "FlateDecode" },
        objects.to_unicode.clone(),
    ));
    let base_font = Object::Name(objects.base_font.clone().into_bytes());
    let descendant = dictionary! {
        "Type" => "Font",
        "Subtype" => "CIDFontType2",
        "BaseFont" => base_font.clone(),
        "CIDSystemInfo" => dictionary! {
            "Registry" => Object::string_literal("Adobe"),
            "Ordering" => Object::string_literal("Identity"),
            "Supplement" => 0,
        },
        "FontDescriptor" => descriptor,
        "W" => objects.widths.clone(),
        "CIDToGIDMap" => cid_to_gid,
    };
    doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type0",
        "BaseFont" => base_font,
        "Encoding" => "Identity-H",
        "DescendantFonts" => vec![descendant.into()],
        "ToUnicode" => to_unicode,
    })
}

/// A stream of `content`, deflated.
fn deflated_stream(content: &[u8]) -> Stream {
    Stream::new(dictionary! { "Filter" => "FlateDecode" }, deflate(content))
}

fn info_dictionary(info: &DocumentInfo) -> Dictionary {
    let date = Object::string_literal(format!("D:{}000000Z", info.date.format("%Y%m%d")));
    dictionary! {
        "Title" => text_string(&info.title),
        "Subject" => text_string(&info.title),
        "Author" => text_string(&info.author),
        "Creator" => text_string(&info.creator),
        "Producer" => text_string("faktura"),
        "CreationDate" => date.clone(),
        "ModDate" => date,
    }
}

/// A PDF text string: literal when ASCII, else UTF-16BE with its mark.
fn text_string(text: &str) -> Object {
    if text.is_ascii() {
        return Object::string_literal(text);
    }
    let mut bytes = vec![0xFE, 0xFF];
    bytes.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    Object::String(bytes, StringFormat::Hexadecimal)
}

/// 16 bytes of SHA-256 of the identifier.
fn document_id(identifier: &str) -> Object {
    let digest = Sha256::digest(format!("faktura-invoice:{identifier}").as_bytes());
    Object::String(digest[..16].to_vec(), StringFormat::Hexadecimal)
}

fn points(mm: f32) -> Object {
    Object::Real(mm * 72.0 / 25.4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_id_is_16_bytes_of_the_invoice_number_alone() {
        let id = |number: &str| match document_id(number) {
            Object::String(bytes, StringFormat::Hexadecimal) => bytes,
            other => panic!("{other:?}"),
        };
        assert_eq!(id("INV-00000001").len(), 16);
        assert_eq!(id("INV-00000001"), id("INV-00000001"));
        assert_ne!(id("INV-00000001"), id("INV-00000002"));
    }
}
