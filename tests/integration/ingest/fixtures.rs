//! Files for the ingest tests, generated at test time: a minimal PDF writer, PNG chunks by
//! hand (so headers can lie), JPEG with an EXIF orientation, GIF, DOCX zip, Shift-JIS CSV.

use flate2::Compression;
use flate2::write::ZlibEncoder;
use std::io::Write;

/// A PDF under construction: objects are numbered from 1 in the order they are added.
#[derive(Default)]
pub struct PdfWriter {
    objects: Vec<Vec<u8>>,
}

impl PdfWriter {
    pub fn reserve(&mut self) -> usize {
        self.objects.push(Vec::new());
        self.objects.len()
    }

    pub fn set(&mut self, id: usize, body: impl Into<Vec<u8>>) {
        self.objects[id - 1] = body.into();
    }

    pub fn add(&mut self, body: impl Into<Vec<u8>>) -> usize {
        let id = self.reserve();
        self.set(id, body);
        id
    }

    pub fn add_stream(&mut self, extra_dict: &str, data: &[u8]) -> usize {
        self.add(stream(extra_dict, data))
    }

    /// Serialises with a correct xref table; `root` is the catalog.
    pub fn finish(self, root: usize, info: Option<usize>) -> Vec<u8> {
        cria_ingest::pdf_writer::write_pdf(&self.objects, root, info)
    }
}

pub fn stream(extra_dict: &str, data: &[u8]) -> Vec<u8> {
    let mut body = format!("<< /Length {} {extra_dict} >>\nstream\n", data.len()).into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\nendstream");
    body
}

pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).expect("in-memory write");
    encoder.finish().expect("in-memory write")
}

/// Zlib of `length` zero bytes, streamed so the zeros never exist in memory at once.
pub fn zlib_zeros(length: usize) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
    let block = vec![0u8; 1 << 20];
    let mut left = length;
    while left > 0 {
        let take = left.min(block.len());
        encoder.write_all(&block[..take]).expect("in-memory write");
        left -= take;
    }
    encoder.finish().expect("in-memory write")
}

fn pdf_literal(text: &str) -> String {
    let mut out = String::from("(");
    for character in text.chars() {
        match character {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(character);
            }
            _ => out.push(character),
        }
    }
    out.push(')');
    out
}

/// What goes on one generated page.
pub enum PageContent<'a> {
    /// Lines of Latin text in Helvetica.
    Latin(&'a [&'a str]),
    /// Lines of Korean text in a non-embedded CID font with a ToUnicode map.
    Korean(&'a [&'a str]),
    /// A grey image with dark bars, like a scan: no text layer at all.
    Scan,
    /// Raw content stream and extra resources.
    Raw { content: Vec<u8>, resources: String },
}

/// A PDF whose pages hold `pages`; metadata title "Generated".
pub fn pdf_with_pages(pages: &[PageContent<'_>]) -> Vec<u8> {
    let mut pdf = PdfWriter::default();
    let catalog = pdf.reserve();
    let page_tree = pdf.reserve();
    let helvetica = pdf
        .add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>");
    let korean_chars: Vec<char> = {
        let mut chars: Vec<char> = pages
            .iter()
            .filter_map(|page| match page {
                PageContent::Korean(lines) => Some(lines.iter().flat_map(|line| line.chars())),
                _ => None,
            })
            .flatten()
            .collect();
        chars.sort_unstable();
        chars.dedup();
        chars
    };
    let korean_font = (!korean_chars.is_empty()).then(|| {
        let mut cmap = String::from(
            "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
        );
        cmap.push_str(&format!("{} beginbfchar\n", korean_chars.len()));
        for (index, character) in korean_chars.iter().enumerate() {
            let mut units = [0u16; 2];
            let hex: String = character
                .encode_utf16(&mut units)
                .iter()
                .map(|unit| format!("{unit:04X}"))
                .collect();
            cmap.push_str(&format!("<{:04X}> <{hex}>\n", index + 1));
        }
        cmap.push_str("endbfchar\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
        let to_unicode = pdf.add_stream("", cmap.as_bytes());
        let descriptor = pdf.add("<< /Type /FontDescriptor /FontName /NanumGothic /Flags 4 /FontBBox [0 -120 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 700 /StemV 80 >>");
        let descendant = pdf.add(format!("<< /Type /Font /Subtype /CIDFontType2 /BaseFont /NanumGothic /CIDSystemInfo << /Registry (Adobe) /Ordering (Korea1) /Supplement 0 >> /FontDescriptor {descriptor} 0 R /DW 1000 >>"));
        pdf.add(format!("<< /Type /Font /Subtype /Type0 /BaseFont /NanumGothic /Encoding /Identity-H /DescendantFonts [{descendant} 0 R] /ToUnicode {to_unicode} 0 R >>"))
    });
    let mut page_ids = Vec::new();
    for page in pages {
        let (content, resources) = match page {
            PageContent::Latin(lines) => {
                let mut content = String::from("BT /F1 12 Tf 16 TL 72 720 Td\n");
                for line in *lines {
                    content.push_str(&format!("{} Tj T*\n", pdf_literal(line)));
                }
                content.push_str("ET\n");
                (
                    content.into_bytes(),
                    format!("/Font << /F1 {helvetica} 0 R >>"),
                )
            }
            PageContent::Korean(lines) => {
                let mut content = String::from("BT /F2 14 Tf 20 TL 72 720 Td\n");
                for line in *lines {
                    let codes: String = line
                        .chars()
                        .map(|c| {
                            let index = korean_chars.binary_search(&c).expect("collected above");
                            format!("{:04X}", index + 1)
                        })
                        .collect();
                    content.push_str(&format!("<{codes}> Tj T*\n"));
                }
                content.push_str("ET\n");
                let font = korean_font.expect("korean font exists when a Korean page does");
                (content.into_bytes(), format!("/Font << /F2 {font} 0 R >>"))
            }
            PageContent::Scan => {
                let (width, height) = (300usize, 80usize);
                let mut pixels = vec![235u8; width * height];
                for y in 20..60 {
                    for x in (20..280).filter(|x| (x / 12) % 2 == 0) {
                        pixels[y * width + x] = 20;
                    }
                }
                let image = pdf.add_stream(
                    &format!("/Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode"),
                    &zlib(&pixels),
                );
                (
                    b"q 450 0 0 120 72 600 cm /Im0 Do Q\n".to_vec(),
                    format!("/XObject << /Im0 {image} 0 R >>"),
                )
            }
            PageContent::Raw { content, resources } => (content.clone(), resources.clone()),
        };
        let content_id = pdf.add_stream("", &content);
        page_ids.push(pdf.add(format!(
            "<< /Type /Page /Parent {page_tree} 0 R /MediaBox [0 0 612 792] /Resources << {resources} >> /Contents {content_id} 0 R >>"
        )));
    }
    let kids: String = page_ids.iter().map(|id| format!("{id} 0 R ")).collect();
    pdf.set(
        page_tree,
        format!(
            "<< /Type /Pages /Kids [{kids}] /Count {} >>",
            page_ids.len()
        ),
    );
    pdf.set(
        catalog,
        format!("<< /Type /Catalog /Pages {page_tree} 0 R >>"),
    );
    let info = pdf.add("<< /Title (Generated) /Producer (cria-tests) >>");
    pdf.finish(catalog, Some(info))
}

/// One page whose content is `content` (resources none).
pub fn pdf_with_raw_page(content: Vec<u8>, resources: &str) -> Vec<u8> {
    pdf_with_pages(&[PageContent::Raw {
        content,
        resources: resources.to_string(),
    }])
}

/// A PDF with `count` pages sharing one content stream.
pub fn pdf_with_many_pages(count: usize) -> Vec<u8> {
    let mut pdf = PdfWriter::default();
    let catalog = pdf.reserve();
    let page_tree = pdf.reserve();
    let content = pdf.add_stream("", b"BT /F1 12 Tf 72 720 Td (page) Tj ET");
    let font = pdf.add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
    let mut kids = String::new();
    for _ in 0..count {
        let page = pdf.add(format!(
            "<< /Type /Page /Parent {page_tree} 0 R /MediaBox [0 0 200 200] /Resources << /Font << /F1 {font} 0 R >> >> /Contents {content} 0 R >>"
        ));
        kids.push_str(&format!("{page} 0 R "));
    }
    pdf.set(
        page_tree,
        format!("<< /Type /Pages /Kids [{kids}] /Count {count} >>"),
    );
    pdf.set(
        catalog,
        format!("<< /Type /Catalog /Pages {page_tree} 0 R >>"),
    );
    pdf.finish(catalog, None)
}

/// A page tree whose only kid is itself.
pub fn pdf_with_self_referencing_pages() -> Vec<u8> {
    let mut pdf = PdfWriter::default();
    let catalog = pdf.reserve();
    let page_tree = pdf.reserve();
    pdf.set(
        page_tree,
        format!("<< /Type /Pages /Kids [{page_tree} 0 R] /Count 1 >>"),
    );
    pdf.set(
        catalog,
        format!("<< /Type /Catalog /Pages {page_tree} 0 R >>"),
    );
    pdf.finish(catalog, None)
}

/// A page whose resources hold an array nested `depth` deep.
pub fn pdf_with_nested_arrays(depth: usize) -> Vec<u8> {
    let nested = format!("{}0{}", "[".repeat(depth), "]".repeat(depth));
    pdf_with_raw_page(
        b"BT /F1 12 Tf 72 720 Td (deep) Tj ET".to_vec(),
        &format!("/Deep {nested}"),
    )
}

/// A page drawing a form XObject that draws itself.
pub fn pdf_with_self_drawing_form() -> Vec<u8> {
    let mut pdf = PdfWriter::default();
    let catalog = pdf.reserve();
    let page_tree = pdf.reserve();
    let form = pdf.reserve();
    pdf.set(
        form,
        stream(
            &format!("/Type /XObject /Subtype /Form /BBox [0 0 100 100] /Resources << /XObject << /Fm0 {form} 0 R >> >>"),
            b"0 0 10 10 re f /Fm0 Do",
        ),
    );
    let content = pdf.add_stream("", b"/Fm0 Do");
    let page = pdf.add(format!(
        "<< /Type /Page /Parent {page_tree} 0 R /MediaBox [0 0 200 200] /Resources << /XObject << /Fm0 {form} 0 R >> >> /Contents {content} 0 R >>"
    ));
    pdf.set(
        page_tree,
        format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
    );
    pdf.set(
        catalog,
        format!("<< /Type /Catalog /Pages {page_tree} 0 R >>"),
    );
    pdf.finish(catalog, None)
}

/// A page whose content stream is a Flate stream inflating to `inflated` zero bytes.
pub fn pdf_with_flate_bomb(inflated: usize) -> Vec<u8> {
    let mut pdf = PdfWriter::default();
    let catalog = pdf.reserve();
    let page_tree = pdf.reserve();
    let content = pdf.add_stream("/Filter /FlateDecode", &zlib_zeros(inflated));
    let page = pdf.add(format!(
        "<< /Type /Page /Parent {page_tree} 0 R /MediaBox [0 0 200 200] /Contents {content} 0 R >>"
    ));
    pdf.set(
        page_tree,
        format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
    );
    pdf.set(
        catalog,
        format!("<< /Type /Catalog /Pages {page_tree} 0 R >>"),
    );
    pdf.finish(catalog, None)
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// An 8-bit RGB PNG whose header claims `width`×`height`, with `idat` as its zlib data and
/// optional extra chunks before it.
pub fn png_raw(width: u32, height: u32, extra: &[(&[u8; 4], Vec<u8>)], idat: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &header);
    for (kind, data) in extra {
        png_chunk(&mut out, kind, data);
    }
    png_chunk(&mut out, b"IDAT", idat);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A real 1×1 PNG carrying a compressed iTXt chunk that inflates to `inflated` bytes.
pub fn png_itxt_bomb(inflated: usize) -> Vec<u8> {
    let mut itxt = b"Comment\0\x01\x00\0\0".to_vec();
    itxt.extend_from_slice(&zlib_zeros(inflated));
    png_raw(1, 1, &[(b"iTXt", itxt)], &zlib(&[0, 255, 0, 0]))
}

pub fn encode_image(image: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("in-memory encode");
    out.into_inner()
}

/// A 40×20 JPEG, left half red and right half blue, tagged EXIF orientation 6 (the camera
/// was turned: display rotated 90° clockwise).
pub fn jpeg_with_orientation_6() -> Vec<u8> {
    let image = image::RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            image::Rgb([220, 20, 20])
        } else {
            image::Rgb([20, 20, 220])
        }
    });
    let jpeg = encode_image(
        &image::DynamicImage::ImageRgb8(image),
        image::ImageFormat::Jpeg,
    );
    // Big-endian TIFF with one IFD entry: Orientation (0x0112), SHORT, count 1, value 6.
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    exif.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0, 6, 0, 0]);
    exif.extend_from_slice(&[0, 0, 0, 0]);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// An animated GIF of `frames` 2×2 frames.
pub fn gif_with_frames(frames: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        let frame_list = (0..frames).map(|index| {
            let shade = (index % 256) as u8;
            image::Frame::new(image::RgbaImage::from_pixel(
                2,
                2,
                image::Rgba([shade, 0, 0, 255]),
            ))
        });
        encoder.encode_frames(frame_list).expect("in-memory encode");
    }
    out
}

fn zip_parts(parts: &[(&str, String)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default();
        for (name, body) in parts {
            zip.start_file(*name, options).expect("in-memory zip");
            zip.write_all(body.as_bytes()).expect("in-memory zip");
        }
        zip.finish().expect("in-memory zip");
    }
    out.into_inner()
}

/// An XLSX with one sheet "Sales": a header row and two data rows (inline strings, numbers).
pub fn xlsx_with_sheet() -> Vec<u8> {
    let content_types = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#;
    let rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
    let workbook = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sales" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    let workbook_rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
    let text = |cell: &str, value: &str| {
        format!(r#"<c r="{cell}" t="inlineStr"><is><t>{value}</t></is></c>"#)
    };
    let number = |cell: &str, value: u32| format!(r#"<c r="{cell}"><v>{value}</v></c>"#);
    let sheet = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">{}{}</row><row r="2">{}{}</row><row r="3">{}{}</row></sheetData></worksheet>"#,
        text("A1", "City"),
        text("B1", "Units"),
        text("A2", "Incheon"),
        number("B2", 4521),
        text("A3", "Daegu"),
        number("B3", 3310)
    );
    zip_parts(&[
        ("[Content_Types].xml", content_types.to_string()),
        ("_rels/.rels", rels.to_string()),
        ("xl/workbook.xml", workbook.to_string()),
        ("xl/_rels/workbook.xml.rels", workbook_rels.to_string()),
        ("xl/worksheets/sheet1.xml", sheet),
    ])
}

/// A DOCX with a heading, a paragraph and a 2×3 table.
pub fn docx_with_table() -> Vec<u8> {
    let content_types = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
    let rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
    let cell = |text: &str| format!("<w:tc><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:tc>");
    let row = |a: &str, b: &str| format!("<w:tr>{}{}</w:tr>", cell(a), cell(b));
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Quarterly Figures</w:t></w:r></w:p><w:p><w:r><w:t>Revenue grew in every region.</w:t></w:r></w:p><w:tbl>{}{}{}</w:tbl></w:body></w:document>"#,
        row("Region", "Revenue"),
        row("Seoul", "1200"),
        row("Busan", "860")
    );
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default();
        for (name, body) in [
            ("[Content_Types].xml", content_types.to_string()),
            ("_rels/.rels", rels.to_string()),
            ("word/document.xml", document),
        ] {
            zip.start_file(name, options).expect("in-memory zip");
            zip.write_all(body.as_bytes()).expect("in-memory zip");
        }
        zip.finish().expect("in-memory zip");
    }
    out.into_inner()
}

/// The padding string of the PDF standard security handler (ISO 32000-1, 7.6.3.3).
const PASSWORD_PADDING: [u8; 32] = [
    0x28, 0xBF, 0x4E, 0x5E, 0x4E, 0x75, 0x8A, 0x41, 0x64, 0x00, 0x4E, 0x56, 0xFF, 0xFA, 0x01, 0x08,
    0x2E, 0x2E, 0x00, 0xB6, 0xD0, 0x68, 0x3E, 0x80, 0x2F, 0x0C, 0xA9, 0xFE, 0x64, 0x53, 0x69, 0x7A,
];

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    use md5::Digest;
    let mut hasher = md5::Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut state: Vec<u8> = (0..=255).collect();
    let mut j = 0u8;
    for i in 0..256 {
        j = j.wrapping_add(state[i]).wrapping_add(key[i % key.len()]);
        state.swap(i, j as usize);
    }
    let (mut i, mut j) = (0u8, 0u8);
    data.iter()
        .map(|byte| {
            i = i.wrapping_add(1);
            j = j.wrapping_add(state[i as usize]);
            state.swap(i as usize, j as usize);
            byte ^ state[(state[i as usize].wrapping_add(state[j as usize])) as usize]
        })
        .collect()
}

fn padded(password: &str) -> Vec<u8> {
    let mut out: Vec<u8> = password.bytes().take(32).collect();
    out.extend_from_slice(&PASSWORD_PADDING[..32 - out.len()]);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02X}")).collect()
}

/// A one-page PDF encrypted with the standard security handler, revision 2 (40-bit RC4),
/// user password `user_password`, whose page says `text`.
pub fn encrypted_pdf(user_password: &str, text: &str) -> Vec<u8> {
    let file_id = [0x5Au8; 16];
    let owner_key = md5(&[&padded("owner-secret")]);
    let owner_value = rc4(&owner_key[..5], &padded(user_password));
    let permissions: i32 = -4;
    let key_digest = md5(&[
        &padded(user_password),
        &owner_value,
        &permissions.to_le_bytes(),
        &file_id,
    ]);
    let key = &key_digest[..5];
    let user_value = rc4(key, &PASSWORD_PADDING);
    let object_key = |id: usize| {
        let id_bytes = (id as u32).to_le_bytes();
        let digest = md5(&[key, &id_bytes[..3], &[0, 0]]);
        digest[..10].to_vec()
    };
    let mut pdf = PdfWriter::default();
    let catalog = pdf.reserve();
    let tree = pdf.reserve();
    let font = pdf.add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
    let content = pdf.reserve();
    let plain = format!("BT /F1 12 Tf 72 720 Td {} Tj ET", pdf_literal(text));
    pdf.set(
        content,
        stream("", &rc4(&object_key(content), plain.as_bytes())),
    );
    let page = pdf.add(format!(
        "<< /Type /Page /Parent {tree} 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 {font} 0 R >> >> /Contents {content} 0 R >>"
    ));
    pdf.set(
        tree,
        format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
    );
    pdf.set(catalog, format!("<< /Type /Catalog /Pages {tree} 0 R >>"));
    let encrypt = pdf.add(format!(
        "<< /Filter /Standard /V 1 /R 2 /Length 40 /O <{}> /U <{}> /P {permissions} >>",
        hex(&owner_value),
        hex(&user_value)
    ));
    let mut bytes = pdf.finish(catalog, None);
    // Point the trailer at the Encrypt dictionary and give the file its ID.
    let trailer = format!("/Root {catalog} 0 R");
    let position = bytes
        .windows(trailer.len())
        .rposition(|window| window == trailer.as_bytes())
        .expect("trailer written above");
    let insert = format!(" /Encrypt {encrypt} 0 R /ID [<{0}> <{0}>]", hex(&file_id));
    bytes.splice(
        position + trailer.len()..position + trailer.len(),
        insert.bytes(),
    );
    bytes
}
