//! Line plots of metric curves, written as PNG (to look at) and SVG (to zoom, diff and embed),
//! with plotters and a font shipped in `assets/fonts/` so that no system font or fontconfig
//! is needed: GPU hosts and CI images often have neither.
//!
//! [`curves`] draws any set of series (per-run plots here, ablation reports elsewhere);
//! [`run_plots`] draws one figure per metric of a run's `metrics.jsonl` into `<run>/plots/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::error::TrackError;

/// The font plot text is drawn with (DejaVu Sans; licence beside it).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Pixel size of the PNG; the SVG uses the same user units.
pub const SIZE: (u32, u32) = (960, 600);

/// Series colours: matplotlib's "tab10", which stays distinguishable for most colour vision.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// One labelled curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    /// (x, y) in drawing order; non-finite points are left out (a diverged step has no value
    /// to draw, and plotters cannot place NaN).
    pub points: Vec<(f64, f64)>,
}

type Points = Vec<(f64, f64)>;

/// The two files one figure is written to.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub png: PathBuf,
    pub svg: PathBuf,
}

/// The colour series `i` is drawn in (its legend entry and SVG `stroke` use the same).
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Draws `series` on shared axes into `<stem>.png` and `<stem>.svg` (parent directories are
/// created). Series with no finite point are listed in the legend but draw nothing.
pub fn curves(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<Written, TrackError> {
    register_font();
    if let Some(parent) = stem.parent() {
        std::fs::create_dir_all(parent).map_err(|source| TrackError::Io { path: parent.to_path_buf(), source })?;
    }
    let finite: Vec<Series> = series
        .iter()
        .map(|s| Series {
            label: s.label.clone(),
            points: s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect(),
        })
        .collect();
    let figure = Figure { title, x_label, y_label, series: &finite };
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    figure
        .draw(BitMapBackend::new(&png, SIZE).into_drawing_area())
        .map_err(|message| TrackError::Plot { path: png.clone(), message })?;
    figure
        .draw(SVGBackend::new(&svg, SIZE).into_drawing_area())
        .map_err(|message| TrackError::Plot { path: svg.clone(), message })?;
    Ok(Written { png, svg })
}

/// One figure per metric of `<run>/metrics.jsonl` (train and eval as separate curves over
/// the step), into `<run>/plots/<metric>.{png,svg}`. Returns what was written.
pub fn run_plots(run: &Path) -> anyhow::Result<Vec<Written>> {
    let records = super::metrics::read(&run.join(super::metrics::FILE))?;
    // metric -> split -> points; BTreeMaps keep file names and legend order stable.
    let mut metrics: BTreeMap<&str, BTreeMap<&str, Points>> = BTreeMap::new();
    for r in &records {
        for (name, value) in &r.values {
            metrics.entry(name).or_default().entry(&r.split).or_default().push((r.step as f64, *value));
        }
    }
    let mut written = Vec::new();
    for (metric, splits) in metrics {
        let series: Vec<Series> =
            splits.into_iter().map(|(split, points)| Series { label: split.to_owned(), points }).collect();
        let stem = run.join("plots").join(metric);
        written.push(curves(&stem, metric, "step", metric, &series)?);
    }
    Ok(written)
}

/// plotters keeps its fonts in a process-wide table; filling it once is idempotent and
/// happens before the first figure, whoever draws it.
fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("assets/fonts/DejaVuSans.ttf is a valid TrueType font"));
    });
}

struct Figure<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    series: &'a [Series],
}

impl Figure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(err)?;
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let x = padded_range(points().map(|p| p.0));
        let y = padded_range(points().map(|p| p.1));
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(x, y)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(err)?;
        for (i, s) in self.series.iter().enumerate() {
            let style = ShapeStyle { color: color(i).to_rgba(), filled: false, stroke_width: 2 };
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), style))
                .map_err(err)?
                .label(s.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        if self.series.len() > 1 || self.series.iter().any(|s| !s.label.is_empty()) {
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 14))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)
    }
}

/// The range of `values` with 5% padding; a single value (or none) gets a unit-wide range so
/// the axis still has ticks.
fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if hi - lo <= f64::EPSILON * lo.abs().max(1.0) {
        let half = 0.5 * lo.abs().max(1.0);
        return lo - half..hi + half;
    }
    let pad = 0.05 * (hi - lo);
    lo - pad..hi + pad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_padded_and_never_empty() {
        assert_eq!(padded_range([0.0, 10.0].into_iter()), -0.5..10.5);
        assert_eq!(padded_range([2.0].into_iter()), 1.0..3.0);
        assert_eq!(padded_range(std::iter::empty()), 0.0..1.0);
    }

    #[test]
    fn non_finite_points_are_dropped_and_empty_series_still_draw() {
        let dir = tempfile::tempdir().expect("tempdir");
        let series = [
            Series { label: "a".into(), points: vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 0.5), (3.0, 0.25)] },
            Series { label: "empty".into(), points: vec![] },
        ];
        let w = curves(&dir.path().join("sub/fig"), "t", "x", "y", &series).expect("draws");
        assert!(w.png.ends_with("sub/fig.png") && w.svg.ends_with("sub/fig.svg"));
        let svg = std::fs::read_to_string(&w.svg).expect("svg");
        let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", color(0).0, color(0).1, color(0).2);
        let curve = svg
            .lines()
            .find(|l| l.contains("<polyline") && l.contains(&stroke) && l.matches(',').count() > 2)
            .expect("the first series' polyline");
        let points = curve.split("points=\"").nth(1).expect("points").split('"').next().expect("points");
        assert_eq!(points.split_whitespace().count(), 3, "{curve}");
    }
}
