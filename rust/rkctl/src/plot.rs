//! Plots of a bench report (SVG or PNG, drawn with plotters), each naming
//! the timing mode and its unit: the mean per alloc+free pair of every
//! single-CPU case with the sample min..max as a whisker; the 64 B object
//! batch sweep as one curve per allocator and pattern; with several CPU
//! counts, throughput scaling over one CPU with the repeats' range.
use crate::bench::{axis_unit, Report, Row};
use crate::canvas::{self, Picture};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::{collections::BTreeMap, path::Path};

const GREY: RGBColor = RGBColor(120, 120, 120);
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

/// Grey for the kernel's allocators, a colour of the palette for each of
/// rkalloc's, by its place in the report's table.
fn color(r: &Report, alloc: &str) -> RGBColor {
    match r.allocators.iter().position(|a| a.name == alloc) {
        Some(i) if r.allocators[i].is_kernel() => GREY,
        Some(i) => PALETTE[r.allocators[..i].iter().filter(|a| !a.is_kernel()).count() % PALETTE.len()],
        None if KERNEL_V1.contains(&alloc) => GREY,
        None => PALETTE[alloc.bytes().map(usize::from).sum::<usize>() % PALETTE.len()],
    }
}

/// A curve of the batch sweep: (batch, mean per pair), by batch.
type Curve = Vec<(u32, f64)>;

/// The batch sweep of the 64 B object rows on the fewest CPUs: one curve
/// per (allocator, pattern) with at least two batch sizes.
fn sweep(r: &Report, cpus: usize) -> BTreeMap<(String, String), Curve> {
    let mut m: BTreeMap<(String, String), Curve> = BTreeMap::new();
    for x in r.rows.iter().filter(|x| x.cpus == cpus && x.case.group.starts_with("64 B objects") && x.case.pattern.starts_with("batch")) {
        if let Some(ns) = x.ns_per_op {
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

/// Draws `r` into `out`, an .svg or .png file.
pub fn draw(r: &Report, out: &Path) -> Result<()> {
    let Some(cpus) = r.rows.iter().map(|x| x.cpus).min() else {
        return Err(crate::error::usage("the report has no rows to plot"));
    };
    let rows: Vec<_> = r.rows.iter().filter(|x| x.cpus == cpus && x.ns_per_op.is_some_and(f64::is_finite)).collect();
    if rows.is_empty() {
        return Err(crate::error::usage("the report has no successful rows to plot"));
    }
    let cpu_counts: Vec<usize> = {
        let mut v: Vec<usize> = r.rows.iter().map(|x| x.cpus).collect();
        v.sort();
        v.dedup();
        v
    };
    let sweep = sweep(r, cpus);
    let bars = 120 + 18 * rows.len() as u32;
    let height = bars + if sweep.is_empty() { 0 } else { 460 } + if cpu_counts.len() > 1 { 460 } else { 0 };
    canvas::render(out, (1200, height), &Plot { r, rows, cpus, cpu_counts, sweep, bars })
}

struct Plot<'a> {
    r: &'a Report,
    rows: Vec<&'a Row>,
    cpus: usize,
    cpu_counts: Vec<usize>,
    sweep: BTreeMap<(String, String), Curve>,
    bars: u32,
}

impl Picture for Plot<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let Plot { r, rows, cpus, cpu_counts, sweep, bars } = self;
        let unit = axis_unit(&r.mode);
        let n = rows.len();
        root.fill(&WHITE)?;
        let (top, rest) = root.split_vertically(*bars);
        let (middle, bottom) = rest.split_vertically(if sweep.is_empty() { 0 } else { 460 });
        let max = rows.iter().map(|x| x.sample_max_ns.or(x.ns_per_op).unwrap_or(1.0)).fold(1.0, f64::max) * 1.5;
        let build = if r.build.is_empty() { String::new() } else { format!("; {}", r.build) };
        let mut chart = ChartBuilder::on(&top)
            .caption(
                format!("mean per alloc+free pair, {cpus} CPU ({} mode{build}); whisker: sample min..max; grey = kernel", r.mode),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(440)
            .build_cartesian_2d((1.0..max).log_scale(), 0..n)?;
        let labels: Vec<String> = rows
            .iter()
            .map(|x| {
                let ratio = x.ratio.map_or(String::new(), |v| format!(" ({v:.2}x)"));
                let batch = if x.case.batch > 1 { format!(" x{}", x.case.batch) } else { String::new() };
                format!("{}{batch} | {}{ratio}", x.case.group, x.case.allocator)
            })
            .collect();
        chart
            .configure_mesh()
            .y_labels(n)
            .y_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
            .x_desc(format!("{unit} per pair, log scale"))
            .draw()?;
        chart.draw_series(rows.iter().enumerate().map(|(i, x)| {
            Rectangle::new([(1.0, i), (x.ns_per_op.unwrap_or(1.0).max(1.0), i + 1)], color(r, &x.case.allocator).filled())
        }))?;
        // Whiskers: the fastest and slowest sample, on a finer y axis.
        let whiskers: Vec<(f64, f64, usize)> =
            rows.iter().enumerate().filter_map(|(i, x)| Some((x.sample_min_ns?.max(1.0), x.sample_max_ns?.max(1.0), i))).collect();
        let mut fine = ChartBuilder::on(&top)
            .caption(" ", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(440)
            .build_cartesian_2d((1.0..max).log_scale(), 0.0..n as f64)?;
        fine.draw_series(
            whiskers.into_iter().map(|(lo, hi, i)| PathElement::new(vec![(lo, i as f64 + 0.5), (hi, i as f64 + 0.5)], BLACK.stroke_width(1))),
        )?;

        if !sweep.is_empty() {
            let ymax = sweep.values().flatten().map(|p| p.1).fold(1.0, f64::max) * 1.15;
            let mut chart = ChartBuilder::on(&middle)
                .caption(format!("64 B objects: batch size sweep, mean per pair, {cpus} CPU ({} mode)", r.mode), ("sans-serif", 16))
                .margin(20)
                .x_label_area_size(36)
                .y_label_area_size(70)
                .build_cartesian_2d((32u32..8192u32).log_scale(), 0.0..ymax)?;
            chart.configure_mesh().x_desc("objects held at once (batch)").y_desc(format!("{unit} per pair")).draw()?;
            for ((alloc, pattern), pts) in sweep.iter() {
                let c = color(r, alloc);
                let style = if pattern == "batch" { c.stroke_width(2) } else { c.stroke_width(1) };
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), style))?
                    .label(format!("{alloc} {pattern}"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], style));
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
            }
            chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
        }

        if let [.., last] = cpu_counts[..] {
            if cpu_counts.len() > 1 {
                let scaled: Vec<&Row> = r.rows.iter().filter(|x| x.scaling.is_some() && !x.case.pattern.contains("cross")).collect();
                let top = scaled.iter().filter_map(|x| x.scaling.as_ref().map(|s| s.high)).fold(last as f64, f64::max) + 0.5;
                let mut chart = ChartBuilder::on(&bottom)
                    .caption(
                        format!("throughput on N CPUs over 1 CPU ({} mode; bars: slowest..fastest repeat)", r.mode),
                        ("sans-serif", 16),
                    )
                    .margin(20)
                    .x_label_area_size(36)
                    .y_label_area_size(60)
                    .build_cartesian_2d(1usize..last, 0.0..top)?;
                chart.configure_mesh().x_desc("CPUs").y_desc("pairs/s over 1 CPU").draw()?;
                let mut series: BTreeMap<(String, String, u32), Vec<&Row>> = BTreeMap::new();
                for x in &scaled {
                    series.entry((x.case.group.clone(), x.case.allocator.clone(), x.case.batch)).or_default().push(x);
                }
                for ((group, alloc, _), xs) in series {
                    let c = color(r, &alloc);
                    let mut pts = vec![(1usize, 1.0)];
                    pts.extend(xs.iter().filter_map(|x| x.scaling.as_ref().map(|s| (x.cpus, s.ratio))));
                    chart
                        .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                        .label(format!("{group} {alloc}"))
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], c));
                    chart.draw_series(xs.iter().filter_map(|x| {
                        let s = x.scaling.as_ref()?;
                        Some(PathElement::new(vec![(x.cpus, s.low), (x.cpus, s.high)], c.stroke_width(1)))
                    }))?;
                }
                chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
            }
        }
        Ok(())
    }
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
        let mut r = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bench/icount.json")).unwrap();
        let s = svg_of(&r);
        assert!(s.contains("icount mode"), "no mode in the plot");
        assert!(s.contains("guest instructions (-icount) per pair"), "no unit on the axis");
        r.mode = "uml-native".into();
        r.build = "clang 19, -mcmodel=large".into();
        let s = svg_of(&r);
        assert!(s.contains("ns of real time (UML, native) per pair"));
        assert!(s.contains("clang 19, -mcmodel=large"));
    }

    #[test]
    fn the_batch_sweep_is_a_series() {
        let mut r = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bench/icount.json")).unwrap();
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
