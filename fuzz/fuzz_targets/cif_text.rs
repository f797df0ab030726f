//! Fuzz target: the text mmCIF reader, then every accessor on every value it returns.
#![no_main]

use libfuzzer_sys::fuzz_target;

use helico::data::cif::CifFile;

fuzz_target!(|data: &[u8]| {
    // Inputs the dispatcher would hand to the BinaryCIF reader or to gzip belong to other targets.
    if matches!(data.first(), Some(0x80..=0x8f | 0xde | 0xdf)) || data.starts_with(&[0x1f, 0x8b]) {
        return;
    }
    if let Ok(file) = CifFile::from_bytes(data.to_vec(), std::path::Path::new("fuzz.cif")) {
        read_all(&file);
    }
});

fn read_all(file: &CifFile) {
    for block in &file.blocks {
        for category in block.categories() {
            for name in category.column_names() {
                if let Ok(column) = category.column(name) {
                    for row in 0..column.len() {
                        let _ = (column.as_str(row), column.as_f64(row), column.as_i64(row), column.null(row));
                    }
                }
            }
        }
    }
}
