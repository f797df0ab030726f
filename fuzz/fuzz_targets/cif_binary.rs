//! Fuzz target: the BinaryCIF reader (MessagePack framing, then every column decoded through
//! its encodings), then every accessor on every value it returns.
#![no_main]

use libfuzzer_sys::fuzz_target;

use helico::data::cif::CifFile;

fuzz_target!(|data: &[u8]| {
    // Only inputs the dispatcher hands to the BinaryCIF reader (a MessagePack map first).
    if !matches!(data.first(), Some(0x80..=0x8f | 0xde | 0xdf)) {
        return;
    }
    if let Ok(file) = CifFile::from_bytes(data.to_vec(), std::path::Path::new("fuzz.bcif")) {
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
