//! Line plots of metric curves, written as PNG (to look at) and SVG (to zoom, diff and embed),
//! with plotters and a font shipped in `assets/fonts/` so that no system font or fontconfig
//! is needed: GPU hosts and CI images often have neither.
//!
//! [`curves`] draws any set of series into a PNG and SVG pair; [`figure`] draws a grid of
//! panels (curves, or one value ± sd per category) into one file, for comparisons (`helico
//! diff --plot`, ablation reports); [`run_plots`] draws one figure per metric of a run's
//! `metrics.jsonl` into `<run>/plots/`.

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

/// One chart of a [`figure`].
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub chart: Chart,
}

/// What a panel shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// Curves on shared axes, with a legend.
    Lines(Vec<Series>),
    /// One point per named category, with a ±sd bar where there is one; `None` draws nothing
    /// at that category (no result).
    Categories { labels: Vec<String>, values: Vec<Option<(f64, Option<f64>)>> },
}

/// Pixel size of one panel of a [`figure`].
pub const PANEL_SIZE: (u32, u32) = (720, 450);

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
    let panel = Panel {
        title: title.to_owned(),
        x_label: x_label.to_owned(),
        y_label: y_label.to_owned(),
        chart: Chart::Lines(series.to_vec()),
    };
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    draw(&png, Format::Png, SIZE, std::slice::from_ref(&panel))?;
    draw(&svg, Format::Svg, SIZE, std::slice::from_ref(&panel))?;
    Ok(Written { png, svg })
}

/// Draws `panels` in a grid (two columns when there are several) into `path`, a PNG or an
/// SVG by its extension; parent directories are created.
pub fn figure(path: &Path, panels: &[Panel]) -> Result<(), TrackError> {
    register_font();
    let format = Format::of(path)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| TrackError::Io { path: parent.to_path_buf(), source })?;
    }
    let cols = panels.len().clamp(1, 2) as u32;
    let rows = panels.len().div_ceil(2).max(1) as u32;
    draw(path, format, (PANEL_SIZE.0 * cols, PANEL_SIZE.1 * rows), panels)
}

/// The image formats a figure can be written in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    /// The format `path`'s extension names; anything else is refused before drawing.
    pub fn of(path: &Path) -> Result<Format, TrackError> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("png") => Ok(Format::Png),
            Some("svg") => Ok(Format::Svg),
            _ => Err(TrackError::Plot {
                path: path.to_path_buf(),
                message: "the file name must end in .png or .svg (the image format)".into(),
            }),
        }
    }
}

fn draw(path: &Path, format: Format, size: (u32, u32), panels: &[Panel]) -> Result<(), TrackError> {
    let drawn = match format {
        Format::Png => draw_panels(BitMapBackend::new(path, size).into_drawing_area(), panels),
        Format::Svg => draw_panels(SVGBackend::new(path, size).into_drawing_area(), panels),
    };
    drawn.map_err(|message| TrackError::Plot { path: path.to_path_buf(), message })
}

fn draw_panels<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, panels: &[Panel]) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let cols = panels.len().clamp(1, 2);
    let areas = root.split_evenly((panels.len().div_ceil(cols).max(1), cols));
    for (panel, area) in panels.iter().zip(&areas) {
        match &panel.chart {
            Chart::Lines(series) => lines(area, panel, series)?,
            Chart::Categories { labels, values } => categories(area, panel, labels, values)?,
        }
    }
    root.present().map_err(err)
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

fn lines<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel, series: &[Series]) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let x = padded_range(series.iter().flat_map(finite).map(|p| p.0));
    let y = padded_range(series.iter().flat_map(finite).map(|p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let style = ShapeStyle { color: color(i).to_rgba(), filled: false, stroke_width: 2 };
        chart
            .draw_series(LineSeries::new(finite(s), style))
            .map_err(err)?
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        // A line needs two points: a lone one (a single evaluation) is drawn as a marker.
        if finite(s).count() == 1 {
            chart.draw_series(finite(s).map(|p| Circle::new(p, 4, style.filled()))).map_err(err)?;
        }
    }
    if series.len() > 1 || series.iter().any(|s| !s.label.is_empty()) {
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// A series' points that can be placed (a diverged step has no value to draw).
fn finite(s: &Series) -> impl Iterator<Item = (f64, f64)> + '_ {
    s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite())
}

/// Category i sits at x = i; the axis shows the category names there.
fn categories<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    labels: &[String],
    values: &[Option<(f64, Option<f64>)>],
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let shown: Vec<(usize, f64, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.filter(|(m, _)| m.is_finite()).map(|(m, sd)| (i, m, sd.filter(|s| s.is_finite()).unwrap_or(0.0)))
        })
        .collect();
    let y = padded_range(shown.iter().flat_map(|&(_, m, sd)| [m - sd, m + sd]));
    let n = labels.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, y)
        .map_err(err)?;
    let name = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            labels.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&name)
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    let style = ShapeStyle { color: color(0).to_rgba(), filled: true, stroke_width: 2 };
    chart
        .draw_series(shown.iter().map(|&(i, m, sd)| ErrorBar::new_vertical(i as f64, m - sd, m, m + sd, style, 12)))
        .map_err(err)?;
    Ok(())
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

    #[test]
    fn figures_hold_every_panel_in_the_format_their_name_says() {
        let dir = tempfile::tempdir().expect("tempdir");
        let panel = |title: &str, chart| Panel { title: title.into(), x_label: "x".into(), y_label: "y".into(), chart };
        let panels = [
            panel("curves", Chart::Lines(vec![Series { label: "run".into(), points: vec![(0.0, 2.0), (1.0, 1.0)] }])),
            panel(
                "per setting",
                Chart::Categories {
                    labels: vec!["n_layers=2".into(), "n_layers=4".into(), "failed".into()],
                    values: vec![Some((1.5, Some(0.1))), Some((1.2, None)), None],
                },
            ),
        ];
        let svg = dir.path().join("f.svg");
        figure(&svg, &panels).expect("svg");
        let text = std::fs::read_to_string(&svg).expect("svg text");
        for label in ["curves", "per setting", "n_layers=2", "n_layers=4", "failed"] {
            assert!(text.contains(label), "{label} missing from the figure");
        }
        assert_eq!(text.matches("<circle").count(), 2, "one marker per category with a value");
        let png = dir.path().join("sub/f.PNG");
        figure(&png, &panels).expect("png");
        assert!(std::fs::read(&png).expect("png bytes").starts_with(b"\x89PNG"));
        let refused = figure(&dir.path().join("f.pdf"), &panels).expect_err("pdf is not drawn");
        assert!(refused.to_string().contains(".png or .svg"), "{refused}");
        assert!(!dir.path().join("f.pdf").exists());
    }
}
