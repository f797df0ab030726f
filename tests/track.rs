//! Trackers end to end, each checked by the real library of its format: plots decoded as PNG
//! and parsed as SVG.

use std::path::Path;

use helico::track::plot::{self, Series};

/// Point counts of the SVG polylines drawn in `color` (a curve, and its 2-point legend line).
fn svg_polylines(path: &Path, color: plotters::style::RGBColor) -> Vec<usize> {
    let text = std::fs::read_to_string(path).expect("svg");
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    let stroke = format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2);
    doc.descendants()
        .filter(|n| {
            n.has_tag_name("polyline") && n.attribute("stroke").is_some_and(|s| s.eq_ignore_ascii_case(&stroke))
        })
        .map(|n| n.attribute("points").expect("points").split_whitespace().count())
        .collect()
}

/// Decodes a PNG fully (so a corrupt stream fails) and returns its size.
fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).expect("png")));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).expect("the PNG decodes");
    (frame.width, frame.height)
}

/// Whether the decoded PNG holds a pixel of exactly `color`.
fn png_has_color(path: &Path, color: plotters::style::RGBColor) -> bool {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).expect("png")));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).expect("the PNG decodes");
    let channels = frame.color_type.samples();
    buf[..frame.buffer_size()].chunks(channels).any(|p| p[..3] == [color.0, color.1, color.2])
}

#[test]
fn curves_are_valid_png_and_svg_with_every_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let series = [
        Series { label: "a".into(), points: (0..37).map(|i| (i as f64, (i as f64 * 0.3).sin())).collect() },
        Series { label: "b".into(), points: (0..12).map(|i| (3.0 * i as f64, 0.1 * i as f64)).collect() },
    ];
    let written = plot::curves(&dir.path().join("fig"), "two curves", "x", "y", &series).expect("draws");
    assert_eq!(png_size(&written.png), plot::SIZE);
    for (i, s) in series.iter().enumerate() {
        assert!(png_has_color(&written.png, plot::color(i)), "series {i} is drawn in the PNG");
        let counts = svg_polylines(&written.svg, plot::color(i));
        assert_eq!(counts.iter().max(), Some(&s.points.len()), "series {i}: {counts:?}");
    }
    let svg = std::fs::read_to_string(&written.svg).expect("svg");
    let doc = roxmltree::Document::parse(&svg).expect("XML");
    let texts: Vec<&str> =
        doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).map(str::trim).collect();
    for t in ["two curves", "x", "y", "a", "b"] {
        assert!(texts.contains(&t), "the SVG has the text `{t}`: {texts:?}");
    }
}
