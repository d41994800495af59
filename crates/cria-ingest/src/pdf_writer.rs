//! A minimal PDF serialiser for files that tests and benchmarks generate (never for a user's
//! documents): numbered objects, a correct cross-reference table and a trailer. Shared so the
//! unit tests, the integration tests' fixtures and the ingest benchmark write PDFs one way.

/// The PDF file holding `objects` (object `n` is `objects[n - 1]`, written between
/// `n 0 obj` and `endobj`), with `root` as its catalog and `info` as its document information.
pub fn write_pdf(objects: &[Vec<u8>], root: usize, info: Option<usize>) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (index, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref_offset = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    let info = info
        .map(|id| format!(" /Info {id} 0 R"))
        .unwrap_or_default();
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root {root} 0 R{info} >>\nstartxref\n{xref_offset}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cross_reference_table_points_at_each_object() {
        let pdf = super::write_pdf(
            &[b"<< /Type /Catalog >>".to_vec(), b"(info)".to_vec()],
            1,
            Some(2),
        );
        let find = |needle: &[u8]| pdf.windows(needle.len()).position(|w| w == needle);
        let xref = find(b"xref\n").unwrap();
        let table = String::from_utf8(pdf[xref..].to_vec()).unwrap();
        for (line, number) in table.lines().skip(3).take(2).zip(1..) {
            let offset: usize = line[..10].parse().unwrap();
            assert!(
                pdf[offset..].starts_with(format!("{number} 0 obj\n").as_bytes()),
                "{line}"
            );
        }
        assert!(table.contains("/Root 1 0 R /Info 2 0 R"));
        assert!(table.ends_with(&format!("startxref\n{xref}\n%%EOF\n")));
    }
}
