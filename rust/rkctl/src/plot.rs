//! Plots of a bench report (SVG or PNG, drawn with plotters), each naming
//! the timing mode and its unit: the figure per alloc+free pair of every
//! single-CPU case with a whisker; the 64 B object batch sweep as one curve
//! per allocator and pattern; with several CPU counts, throughput over one
//! CPU for each case with the repeats' range. The figure is the median of
//! the repeats' median samples with the repeats' range as the whisker
//! where the report records them ([`Row::median_ns`]: a sample the host
//! preempted cannot move it), else the mean with the sample min..max.
use crate::bench::{axis_unit, Report, Row};
use crate::canvas::{self, Picture};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::{collections::BTreeMap, path::Path};

/// The kernel's allocators.
const GREY: RGBColor = RGBColor(120, 120, 120);
/// The kernel's allocators: greys, told apart in the sweep's curves.
const GREYS: [RGBColor; 3] = [GREY, RGBColor(60, 60, 60), RGBColor(170, 170, 170)];
/// rkalloc's allocators, in table order.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];
/// Reports of ABI v1 carry no table: the kernel's allocators by name.
const KERNEL_V1: &[&str] = &["alloc_pages", "kmem_cache", "kmalloc", "vmalloc", "kvmalloc"];

/// Grey for the kernel's allocators; for rkalloc's, the palette in the
/// order they first appear in the report's table (or, in a report without
/// one, in its rows).
fn colors(r: &Report) -> BTreeMap<String, RGBColor> {
    let kernel = |name: &str| match r.allocators.iter().find(|a| a.name == name) {
        Some(a) => a.is_kernel(),
        None => KERNEL_V1.contains(&name),
    };
    let names = r.allocators.iter().map(|a| a.name.as_str()).chain(r.rows.iter().map(|x| x.case.allocator.as_str()));
    let mut m = BTreeMap::new();
    let (mut own, mut theirs) = (0, 0);
    for n in names {
        if m.contains_key(n) {
            continue;
        }
        let c = if kernel(n) {
            theirs += 1;
            GREYS[(theirs - 1) % GREYS.len()]
        } else {
            own += 1;
            PALETTE[(own - 1) % PALETTE.len()]
        };
        m.insert(n.to_string(), c);
    }
    m
}

/// A curve of the batch sweep: (batch, mean per pair), by batch.
type Curve = Vec<(u32, f64)>;

/// The batch sweep of the 64 B object rows on the fewest CPUs: one curve
/// per (allocator, pattern) with at least two batch sizes.
fn sweep(r: &Report, cpus: usize) -> BTreeMap<(String, String), Curve> {
    let mut m: BTreeMap<(String, String), Curve> = BTreeMap::new();
    for x in r.rows.iter().filter(|x| x.cpus == cpus && x.case.group.starts_with("64 B objects") && x.case.pattern.starts_with("batch")) {
        if let Some(ns) = figure(x) {
            m.entry((x.case.allocator.clone(), x.case.pattern.clone())).or_default().push((x.case.batch, ns));
        }
    }
    m.retain(|_, v| {
        v.sort_by_key(|p| p.0);
        v.dedup_by_key(|p| p.0);
        v.len() > 1
    });
    m
}

/// A row's figure: its median where the report has one, else its mean.
fn figure(x: &Row) -> Option<f64> {
    x.median_ns().or(x.ns_per_op)
}

/// Whether the plots show medians (every row that ran has them).
fn medians(r: &Report) -> bool {
    r.rows.iter().filter(|x| x.ns_per_op.is_some()).all(|x| !x.repeat_medians_ns.is_empty())
}

/// Draws `r` into `out`, an .svg or .png file.
pub fn draw(r: &Report, out: &Path) -> Result<()> {
    let Some(cpus) = r.rows.iter().map(|x| x.cpus).min() else {
        return Err(crate::error::usage("the report has no rows to plot"));
    };
    let rows: Vec<_> = r.rows.iter().filter(|x| x.cpus == cpus && x.ns_per_op.is_some_and(f64::is_finite)).collect();
    if rows.is_empty() {
        return Err(crate::error::usage("the report has no successful rows to plot"));
    }
    let sweep = sweep(r, cpus);
    let scaled: Vec<&Row> = r.rows.iter().filter(|x| x.scaling.is_some() && !x.case.pattern.contains("cross")).collect();
    let bars = bars_height(rows.len());
    let height = bars + if sweep.is_empty() { 0 } else { 460 } + if scaled.is_empty() { 0 } else { bars_height(scaled.len()) };
    canvas::render(out, (1200, height), &Plot { r, rows, cpus, sweep, scaled, bars, colors: colors(r) })
}

/// A report's plots, with what they show.
struct Plot<'a> {
    r: &'a Report,
    rows: Vec<&'a Row>,
    cpus: usize,
    sweep: BTreeMap<(String, String), Curve>,
    /// Rows with a scaling over 1 CPU (not cross-CPU: its work moves).
    scaled: Vec<&'a Row>,
    bars: u32,
    colors: BTreeMap<String, RGBColor>,
}

impl Plot<'_> {
    /// The colour of an allocator.
    fn color(&self, alloc: &str) -> RGBColor {
        self.colors.get(alloc).copied().unwrap_or(GREY)
    }
}

/// A bar: its value, its whisker (low, high), its colour.
type Bar = (f64, Option<(f64, f64)>, RGBColor);

/// Height of a horizontal bar chart of `n` bars.
fn bars_height(n: usize) -> u32 {
    120 + 18 * n as u32
}

impl Picture for Plot<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let Plot { r, rows, cpus, sweep, scaled, bars, .. } = self;
        let unit = axis_unit(&r.mode);
        root.fill(&WHITE)?;
        let (top, rest) = root.split_vertically(*bars);
        let (middle, bottom) = rest.split_vertically(if sweep.is_empty() { 0 } else { 460 });
        let build = if r.build.is_empty() { String::new() } else { format!("; {}", r.build) };
        let label = |x: &Row| {
            let batch = if x.case.batch > 1 { format!(" x{}", x.case.batch) } else { String::new() };
            format!("{}{batch} | {}", x.case.group, x.case.allocator)
        };

        // Medians with the repeats' range (or means with the sample
        // min..max), log scale.
        let med = medians(r);
        let whisker = |x: &Row| {
            let range = if med {
                let v = &x.repeat_medians_ns;
                Some((v.iter().copied().fold(f64::MAX, f64::min), v.iter().copied().fold(f64::MIN, f64::max)))
            } else {
                x.sample_min_ns.zip(x.sample_max_ns)
            };
            range.map(|(lo, hi)| (lo.max(1.0), hi.max(1.0)))
        };
        let max = rows.iter().map(|x| whisker(x).map(|w| w.1).or(figure(x)).unwrap_or(1.0)).fold(1.0, f64::max) * 1.5;
        let ratio = |x: &Row| if med { x.median_ratio } else { x.ratio };
        let labels: Vec<String> =
            rows.iter().map(|x| format!("{}{}", label(x), ratio(x).map_or(String::new(), |v| format!(" ({v:.2}x)")))).collect();
        let bars: Vec<Bar> =
            rows.iter().map(|x| (figure(x).unwrap_or(1.0).max(1.0), whisker(x), self.color(&x.case.allocator))).collect();
        let what = if med {
            "median per alloc+free pair (median of the repeats' median samples)"
        } else {
            "mean per alloc+free pair"
        };
        let span = if med { "whisker: the repeats' medians, min..max" } else { "whisker: sample min..max" };
        bar_chart(
            &top,
            format!("{what}, {cpus} CPU ({} mode{build}); {span}; grey = kernel", r.mode),
            format!("{unit} per pair, log scale"),
            (1.0..max).log_scale(),
            1.0,
            &labels,
            &bars,
        )?;

        if !sweep.is_empty() {
            let ymax = sweep.values().flatten().map(|p| p.1).fold(1.0, f64::max) * 1.15;
            let mut chart = ChartBuilder::on(&middle)
                .caption(
                    format!(
                        "64 B objects: batch size sweep, {} per pair, {cpus} CPU ({} mode)",
                        if medians(r) { "median" } else { "mean" },
                        r.mode
                    ),
                    ("sans-serif", 16),
                )
                .margin(20)
                .x_label_area_size(36)
                .y_label_area_size(70)
                .build_cartesian_2d(5.5f64..12.5f64, 0.0..ymax)?;
            // x is log2 of the batch, labelled with the batch at powers of two.
            chart
                .configure_mesh()
                .x_labels(8)
                .x_label_formatter(&|v| if v.fract() == 0.0 { format!("{}", 1u64 << *v as u32) } else { String::new() })
                .x_desc("objects held at once (batch), log scale")
                .y_desc(format!("{unit} per pair"))
                .draw()?;
            for ((alloc, pattern), pts) in sweep.iter() {
                let c = self.color(alloc);
                let style = if pattern == "batch" { c.stroke_width(2) } else { c.stroke_width(1) };
                let pts: Vec<(f64, f64)> = pts.iter().map(|&(b, ns)| (f64::from(b).log2(), ns)).collect();
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), style))?
                    .label(format!("{alloc} {pattern}"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], style));
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
            }
            chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
        }

        if !scaled.is_empty() {
            let labels: Vec<String> = scaled.iter().map(|x| format!("{} ({} CPUs)", label(x), x.cpus)).collect();
            let bars: Vec<Bar> = scaled
                .iter()
                .filter_map(|x| x.scaling.as_ref().map(|s| (s.ratio, Some((s.low, s.high)), self.color(&x.case.allocator))))
                .collect();
            let top = bars.iter().map(|b| b.1.map_or(b.0, |w| w.1)).fold(2.0, f64::max) * 1.1;
            bar_chart(
                &bottom,
                format!("throughput on N CPUs over 1 CPU ({} mode); whisker: slowest..fastest repeat", r.mode),
                "pairs/s over 1 CPU (N = ideal)".into(),
                0.0..top,
                0.0,
                &labels,
                &bars,
            )?;
        }
        Ok(())
    }
}

/// A horizontal bar chart, one labelled bar per row from `base`, each with
/// an optional whisker, on the x axis `x`.
fn bar_chart<DB: DrawingBackend, X>(
    area: &DrawingArea<DB, Shift>,
    caption: String,
    x_desc: String,
    x: X,
    base: f64,
    labels: &[String],
    bars: &[Bar],
) -> Result<()>
where
    DB::ErrorType: 'static,
    X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let n = bars.len();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(440)
        .build_cartesian_2d(x, (0..n).into_segmented())?;
    chart
        .configure_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => labels.get(*i).cloned().unwrap_or_default(),
            SegmentValue::Last => String::new(),
        })
        .x_desc(x_desc)
        .draw()?;
    chart.draw_series(
        bars.iter().enumerate().map(|(i, &(v, _, c))| Rectangle::new([(base, SegmentValue::Exact(i)), (v, SegmentValue::Exact(i + 1))], c.filled())),
    )?;
    chart.draw_series(bars.iter().enumerate().filter_map(|(i, &(_, w, _))| {
        let (lo, hi) = w?;
        Some(PathElement::new(vec![(lo, SegmentValue::CenterOf(i)), (hi, SegmentValue::CenterOf(i))], BLACK.stroke_width(1)))
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{finish, load, row, Case, Sample};

    fn sample(mean: u64) -> Sample {
        Sample { mean_ps: mean, median_ps: mean, min_ps: mean / 2, max_ps: mean * 2, total_ns: 1_000_000, pairs: 1000, latency: None }
    }

    fn svg_of(r: &Report) -> String {
        let out = std::env::temp_dir().join(format!("rkctl-plot-{}-{}.svg", std::process::id(), r.mode));
        draw(r, &out).unwrap();
        let s = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).ok();
        s
    }

    #[test]
    fn plots_name_mode_and_unit() {
        let mut r = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bench/v1/icount.json")).unwrap();
        let s = svg_of(&r);
        assert!(s.contains("icount mode"), "no mode in the plot");
        assert!(s.contains("guest instructions (-icount) per pair"), "no unit on the axis");
        r.mode = "uml-native".into();
        r.build = "clang 19, -mcmodel=large".into();
        let s = svg_of(&r);
        assert!(s.contains("ns of real time (UML, native) per pair"));
        assert!(s.contains("clang 19, -mcmodel=large"));
    }

    /// A report of the synthetic table's quick matrix on 1 and 2 CPUs,
    /// with made-up but distinct figures.
    fn full_report() -> Report {
        let t = crate::table::synthetic::table();
        let (cases, skipped) = crate::bench::matrix(&t, &crate::bench::Spec { quick: true, page_size: 4096, nr_cpus: 2 });
        let mut rows = Vec::new();
        for (i, c) in cases.into_iter().enumerate() {
            for cpus in [1usize, 2] {
                let ps = 100_000 + 37_000 * (i as u64 % 11) + 20_000 * c.batch.ilog2() as u64;
                let reps = (0..3u64).map(|r| (0..cpus).map(|_| sample(ps + 5_000 * r)).collect()).collect();
                rows.push(row(c.clone(), cpus, Ok(reps)));
            }
        }
        finish(&mut rows);
        let mut r = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bench/v1/icount.json")).unwrap();
        r.mode = "uml-native".into();
        r.build = "clang 19, -mcmodel=large".into();
        r.allocators = t;
        r.skipped = skipped;
        r.rows = rows;
        r
    }

    #[test]
    fn a_full_report_plots_in_both_formats() {
        let r = full_report();
        let s = svg_of(&r);
        for text in ["uml-native mode", "batch size sweep", "throughput on N CPUs over 1 CPU", "ns of real time (UML, native) per pair"] {
            assert!(s.contains(text), "no {text:?} in the plot");
        }
        // Rows with the repeats' medians plot medians; older reports, means.
        assert!(s.contains("median per alloc+free pair (median of the repeats"), "no median caption");
        let mut old = full_report();
        for x in &mut old.rows {
            x.repeat_medians_ns.clear();
        }
        assert!(svg_of(&old).contains("mean per alloc+free pair"));
        let out = std::env::temp_dir().join(format!("rkctl-full-{}.png", std::process::id()));
        draw(&r, &out).unwrap();
        let len = std::fs::metadata(&out).unwrap().len();
        std::fs::remove_file(&out).ok();
        assert!(len > 20_000, "{len} bytes");
        // Kernel allocators are grey, rkalloc's each have a colour.
        let c = colors(&r);
        assert!(GREYS.contains(&c["kmalloc"]) && GREYS.contains(&c["alloc_pages"]));
        assert_ne!(c["kmalloc"], c["kmem_cache"]);
        assert!(!GREYS.contains(&c["rk_pool"]));
        assert_ne!(c["rk_pool"], c["rk_slab"]);
    }

    #[test]
    fn the_batch_sweep_is_a_series() {
        let mut r = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bench/v1/icount.json")).unwrap();
        let c = |alloc: &str, batch| Case {
            group: "64 B objects, batch".into(),
            allocator: alloc.into(),
            pattern: "batch".into(),
            bytes: 64,
            batch,
            baseline: None,
        };
        r.rows.retain(|x| x.cpus == 1 && x.case.pattern != "batch");
        for (i, b) in [64, 256, 1024, 4096].into_iter().enumerate() {
            r.rows.push(row(c("rk_slab", b), 1, Ok(vec![vec![sample(100_000 + 10_000 * i as u64)]])));
            r.rows.push(row(c("kmem_cache", b), 1, Ok(vec![vec![sample(200_000)]])));
        }
        finish(&mut r.rows);
        let curves = sweep(&r, 1);
        assert_eq!(curves[&("rk_slab".to_string(), "batch".to_string())], [(64, 100.0), (256, 110.0), (1024, 120.0), (4096, 130.0)]);
        let s = svg_of(&r);
        assert!(s.contains("batch size sweep"));
        assert!(s.contains("rk_slab batch") && s.contains("kmem_cache batch"), "no legend for the sweep");
    }
}
