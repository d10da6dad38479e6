//! The compare report's charts, drawn as SVG by plotters from the run's own figures: the
//! latency distributions of workloads 2 and 4 (one curve per engine, from the histograms
//! their p50 rows carry) and throughput against the number of components (workloads 3 and 7).
//!
//! `--write-perf` writes them to [`CHARTS_DIR`] beside PERF.md, which links them; `--charts
//! DIR` writes them anywhere. plotters is built without its `ttf` feature: it estimates text
//! sizes itself and the SVG carries plain `<text>` elements, which the viewer draws in its
//! own sans-serif font, so no font library is needed.

use std::error::Error;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::{
    BLACK, BindKeyPoints, Cartesian2d, ChartBuilder, ChartContext, Color, DrawingArea, IntoDrawingArea, IntoLogRange,
    LineSeries, PathElement, RGBColor, Ranged, SVGBackend, SeriesLabelPosition, ShapeStyle, WHITE,
};
use switchyard_bench_support::workloads::Engine;

use super::Plan;
use super::report::Row;

/// Where `--write-perf` puts the charts, relative to PERF.md's folder (PERF.md links them so).
pub(super) const CHARTS_DIR: &str = "docs/perf";

/// One chart of the report.
pub(super) struct Chart {
    /// The file name without `.svg`.
    pub(super) name: &'static str,
    /// The chart's title, also the alt text of its link in PERF.md.
    pub(super) title: String,
    /// The SVG document.
    pub(super) svg: String,
}

/// The rows whose latency histograms become charts: (row id, file name, title).
const LATENCY_CHARTS: [(&str, &str, &str); 2] = [
    ("ff_p50", "latency-fire-and-forget", "Fire-and-forget latency, send to handler (workload 2)"),
    ("rr_p50", "latency-request-response", "Request-response round trip from the host (workload 4)"),
];

const SIZE: (u32, u32) = (800, 480);
const FONT: &str = "sans-serif";

/// Every chart this run's rows can draw: a latency chart for each latency workload that ran,
/// the throughput chart when workload 3 or 7 ran.
///
/// # Errors
/// A chart plotters could not draw (it draws into a string, so none is expected).
pub(super) fn charts(rows: &[Row], plan: &Plan) -> Result<Vec<Chart>, Box<dyn Error>> {
    let mut charts = Vec::new();
    for (id, name, title) in LATENCY_CHARTS {
        let Some(row) = rows.iter().find(|r| r.id == id) else { continue };
        let curves: Vec<(Engine, &Histogram<u64>)> = Engine::ALL
            .into_iter()
            .zip(&row.latencies)
            .filter_map(|(engine, h)| h.as_ref().filter(|h| !h.is_empty()).map(|h| (engine, h)))
            .collect();
        if !curves.is_empty() {
            charts.push(Chart { name, title: title.into(), svg: latency_svg(title, &curves)? });
        }
    }
    let series = throughput_series(rows, plan.scale_components);
    if !series.is_empty() {
        let title = format!("Throughput against components, {} producers, all active (workloads 3, 7)", plan.producers);
        let svg = throughput_svg(&title, &series)?;
        charts.push(Chart { name: "throughput-vs-components", title, svg });
    }
    Ok(charts)
}

/// How each engine is drawn and named in the legends.
fn engine_style(engine: Engine) -> (ShapeStyle, &'static str) {
    let (color, label) = match engine {
        Engine::Switchyard => (RGBColor(31, 119, 180), "switchyard"),
        Engine::Baseline => (RGBColor(214, 39, 40), "baseline (tokio broker)"),
        Engine::Floor => (RGBColor(110, 110, 110), "floor (raw crossbeam channels)"),
    };
    (color.stroke_width(2), label)
}

/// Points per nine on the latency charts' percentile axis.
const STEPS_PER_NINE: usize = 40;

/// A latency chart: for each engine, the latency (log scale) at each percentile, with the
/// percentile axis spaced by nines (90%, 99%, 99.9% equally apart), up to the last nine the
/// smallest sample set resolves (at most 99.999%). The axis holds `1 / (1 - q)` on a log
/// scale, which is what spaces the nines evenly.
fn latency_svg(title: &str, curves: &[(Engine, &Histogram<u64>)]) -> Result<String, Box<dyn Error>> {
    let samples = curves.iter().map(|(_, h)| h.len()).min().unwrap_or(1);
    let nines = ((samples as f64).log10().floor() as usize).clamp(1, 5);
    let lines: Vec<(Engine, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|&(engine, h)| {
            let points = (0..=nines * STEPS_PER_NINE)
                .map(|i| {
                    let x = 10f64.powf(i as f64 / STEPS_PER_NINE as f64);
                    (x, h.value_at_quantile(1.0 - 1.0 / x) as f64)
                })
                .collect();
            (engine, points)
        })
        .collect();
    let ys = lines.iter().flat_map(|(_, points)| points.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::MAX, 0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let x_keys: Vec<f64> = [1.0, 2.0].into_iter().chain((1..=nines).map(|n| 10f64.powi(n as i32))).collect();
    // Room above the highest point for the legend: the curves rise to the right, so the top
    // left corner stays clear.
    let (lo, hi) = ((lo / 1.5).max(1.0), hi * 4.0);

    svg_document(|root| {
        let mut chart = chart_builder(root, title, 80).build_cartesian_2d(
            (1.0..10f64.powi(nines as i32)).log_scale().with_key_points(x_keys),
            (lo..hi).log_scale().with_key_points(log_keys(lo, hi)),
        )?;
        chart
            .configure_mesh()
            .x_desc(format!("percentile: share of the {samples} samples at or below (spaced by nines)"))
            .y_desc("latency (log scale)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| nanos_label(*y))
            .axis_desc_style((FONT, 15))
            .draw()?;
        draw_lines(&mut chart, &lines, 0, SeriesLabelPosition::UpperLeft)
    })
}

/// The throughput rows charted, with the number of components each sends to: workload 3's
/// rows and workload 7's run over every registered component, measured the same way.
fn throughput_points(scale_components: usize) -> [(&'static str, usize); 4] {
    [("tput_1", 1), ("tput_100", 100), ("tput_10k", 10_000), ("scale_all", scale_components)]
}

/// For each engine with a figure in the throughput rows, (components, M msg/s) points in
/// order of components.
fn throughput_series(rows: &[Row], scale_components: usize) -> Vec<(Engine, Vec<(f64, f64)>)> {
    let mut points = throughput_points(scale_components);
    points.sort_by_key(|p| p.1);
    Engine::ALL
        .into_iter()
        .map(|engine| {
            let line: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|&(id, components)| {
                    let value = rows.iter().find(|r| r.id == id)?.values[engine as usize]?;
                    Some((components as f64, value))
                })
                .collect();
            (engine, line)
        })
        .filter(|(_, line)| !line.is_empty())
        .collect()
}

/// Throughput (M msg/s) against the number of components (log scale), a line per engine.
fn throughput_svg(title: &str, series: &[(Engine, Vec<(f64, f64)>)]) -> Result<String, Box<dyn Error>> {
    let points = || series.iter().flat_map(|(_, line)| line.iter().copied());
    let max_components = points().map(|p| p.0).fold(1.0, f64::max);
    let max_rate = points().map(|p| p.1).fold(0.0, f64::max);
    let decades = max_components.log10().ceil() as i32;
    let x_keys: Vec<f64> = (0..=decades).map(|d| 10f64.powi(d)).collect();

    svg_document(|root| {
        let mut chart = chart_builder(root, title, 64).build_cartesian_2d(
            (0.6..10f64.powi(decades) * 1.6).log_scale().with_key_points(x_keys),
            // Room above the highest line for the legend.
            0.0..(max_rate * 1.4).max(0.1),
        )?;
        chart
            .configure_mesh()
            .x_desc("components the messages are spread over (log scale)")
            .y_desc("throughput (M msg/s)")
            .x_label_formatter(&|x| count_label(*x))
            .axis_desc_style((FONT, 15))
            .draw()?;
        draw_lines(&mut chart, series, 4, SeriesLabelPosition::UpperRight)
    })
}

/// An SVG document of the charts' size on a white ground, with `draw` drawing on it.
fn svg_document(
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), Box<dyn Error>>,
) -> Result<String, Box<dyn Error>> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(svg)
}

/// A chart on `root` with `title` above it, room for the axes' labels below and at the
/// left (`y_label_width` pixels, for the longest label with its unit).
fn chart_builder<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    y_label_width: u32,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder.caption(title, (FONT, 20)).margin(16).x_label_area_size(48).y_label_area_size(y_label_width);
    builder
}

/// Draws a line per engine (with a dot of `point_size` pixels at each point, 0 for none) and
/// the legend naming them, at `legend`.
fn draw_lines<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    lines: &[(Engine, Vec<(f64, f64)>)],
    point_size: u32,
    legend: SeriesLabelPosition,
) -> Result<(), Box<dyn Error>>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (engine, points) in lines {
        let (style, label) = engine_style(*engine);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style.filled()).point_size(point_size))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}

/// Labelled values for a log axis over `lo..hi`: 1, 2 and 5 times each power of ten, or only
/// the powers of ten when the axis spans more than four of them.
fn log_keys(lo: f64, hi: f64) -> Vec<f64> {
    let steps: &[f64] = if hi / lo > 1e4 { &[1.0] } else { &[1.0, 2.0, 5.0] };
    let first = lo.log10().floor() as i32;
    let last = hi.log10().ceil() as i32;
    (first..=last)
        .flat_map(|d| steps.iter().map(move |m| m * 10f64.powi(d)))
        .filter(|k| (lo..=hi).contains(k))
        .collect()
}

/// The percentile `q` whose `1 / (1 - q)` is `x`: 1 -> "0%", 10 -> "90%", 1000 -> "99.9%".
fn percentile_label(x: f64) -> String {
    let digits = (x.log10().round() as usize).saturating_sub(2);
    format!("{:.digits$}%", 100.0 * (1.0 - 1.0 / x))
}

/// Nanoseconds with the unit that keeps the number short: "250 ns", "1.5 µs", "20 ms".
fn nanos_label(ns: f64) -> String {
    let (value, unit) = match ns {
        ns if ns >= 1e6 => (ns / 1e6, "ms"),
        ns if ns >= 1e3 => (ns / 1e3, "µs"),
        ns => (ns, "ns"),
    };
    format!("{} {unit}", short(value))
}

/// A count with k or M: "1", "100", "10k", "1M".
fn count_label(n: f64) -> String {
    match n {
        n if n >= 1e6 => format!("{}M", short(n / 1e6)),
        n if n >= 1e3 => format!("{}k", short(n / 1e3)),
        n => short(n),
    }
}

/// At most three significant digits, no trailing zeros.
fn short(v: f64) -> String {
    let text = if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") };
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').into() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::Check;

    fn histogram(from: u64, step: u64) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        for i in 0..2_000 {
            h.record(from + i * step).expect("in bounds");
        }
        h
    }

    fn rows() -> Vec<Row> {
        let mut ff = Row::new("ff_p50", "2 fire-and-forget latency", "p50", "ns");
        ff.latencies = [Some(histogram(200, 1)), Some(histogram(2_000, 10)), Some(histogram(100, 1))];
        let tput = |id, sy, base, floor| {
            Row::new(id, "3 throughput", "m", "M msg/s")
                .set(Engine::Switchyard, sy)
                .set(Engine::Baseline, base)
                .set(Engine::Floor, floor)
                .target(">= 4.7", Check::AtLeast(4.7))
        };
        vec![
            ff,
            tput("tput_1", 2.0, 0.5, 1.5),
            tput("tput_100", 2.2, 0.6, 1.6),
            tput("tput_10k", 1.8, 0.4, 1.6),
            Row::new("scale_all", "7 scale and memory", "m", "M msg/s")
                .set(Engine::Switchyard, 1.1)
                .set(Engine::Baseline, 0.3),
        ]
    }

    /// The text of every `<text>` element of `svg`, which must parse as XML.
    fn texts(svg: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).expect("the chart is well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).map(|t| t.trim().into()).collect()
    }

    #[test]
    fn latency_chart_draws_a_curve_per_engine_with_title_axes_and_legend() {
        let charts = charts(&rows(), &Plan::new(true, 2, false)).expect("charts");
        let latency = charts.iter().find(|c| c.name == "latency-fire-and-forget").expect("latency chart");
        let texts = texts(&latency.svg);
        for expected in [
            latency.title.as_str(),
            "switchyard",
            "baseline (tokio broker)",
            "floor (raw crossbeam channels)",
            "latency (log scale)",
            "90%",
            "99.9%",
        ] {
            assert!(texts.iter().any(|t| t == expected), "no text {expected:?} in {texts:?}");
        }
        assert!(texts.iter().any(|t| t.ends_with(" µs")), "latency labels carry units: {texts:?}");
        let doc = roxmltree::Document::parse(&latency.svg).expect("xml");
        let lines = doc.descendants().filter(|n| n.has_tag_name("polyline")).count();
        assert!(lines >= 3, "one curve per engine (and the legend's marks), found {lines} polylines");
    }

    #[test]
    fn throughput_chart_plots_every_engine_against_components() {
        let plan = Plan::new(true, 2, false);
        let charts = charts(&rows(), &plan).expect("charts");
        let tput = charts.iter().find(|c| c.name == "throughput-vs-components").expect("throughput chart");
        let texts = texts(&tput.svg);
        for expected in ["switchyard", "baseline (tokio broker)", "floor (raw crossbeam channels)", "1", "10k", "100k"]
        {
            assert!(texts.iter().any(|t| t == expected), "no text {expected:?} in {texts:?}");
        }
        assert!(texts.iter().any(|t| t == "throughput (M msg/s)"));
        let series = throughput_series(&rows(), plan.scale_components);
        let counts = |engine| series.iter().find(|s| s.0 == engine).map(|s| s.1.len());
        assert_eq!(counts(Engine::Switchyard), Some(4));
        assert_eq!(counts(Engine::Floor), Some(3), "workload 7 has no floor");
        assert_eq!(series[0].1.last(), Some(&(100_000.0, 1.1)));
    }

    #[test]
    fn rows_without_samples_or_figures_draw_nothing() {
        let routing = Row::new("routing", "1 routing cost", "send", "ns/op").set(Engine::Switchyard, 60.0);
        let rr = Row::new("rr_p50", "4 request-response", "p50", "ns").set(Engine::Switchyard, 900.0);
        assert!(charts(&[routing, rr], &Plan::new(true, 2, false)).expect("charts").is_empty());
    }

    #[test]
    fn axis_labels_read_as_percentiles_durations_and_counts() {
        assert_eq!(
            [1.0, 2.0, 10.0, 100.0, 1e3, 1e4].map(percentile_label),
            ["0%", "50%", "90%", "99%", "99.9%", "99.99%"]
        );
        assert_eq!(log_keys(150.0, 2_500.0), [200.0, 500.0, 1_000.0, 2_000.0]);
        assert_eq!(log_keys(50.0, 2e6), [100.0, 1_000.0, 10_000.0, 100_000.0, 1e6]);
        assert_eq!([250.0, 1_500.0, 20_000.0, 2e7].map(nanos_label), ["250 ns", "1.5 µs", "20 µs", "20 ms"]);
        assert_eq!([1.0, 100.0, 10_000.0, 100_000.0, 1e6].map(count_label), ["1", "100", "10k", "100k", "1M"]);
    }
}
