//! Plots of a bench report (SVG, drawn with plotters): ns per alloc+free
//! pair for every case, and each rkalloc allocator's ratio to its kernel
//! peer; with several CPU counts, throughput scaling.
use crate::bench::{Report, Row};
use crate::canvas::{self, Picture};
use plotters::coord::Shift;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;

fn color(alloc: &str) -> RGBColor {
    match alloc {
        "alloc_pages" | "kmem_cache" | "kmalloc" | "vmalloc" | "kvmalloc" => RGBColor(120, 120, 120),
        "rk_pool" => RGBColor(31, 119, 180),
        "rk_slab" => RGBColor(44, 160, 44),
        "rk_malloc" => RGBColor(214, 39, 40),
        "rk_arena" => RGBColor(148, 103, 189),
        _ => RGBColor(255, 127, 14),
    }
}

/// Draws `r` into `out`, an .svg or .png file.
pub fn draw(r: &Report, out: &Path) -> Result<()> {
    let rows: Vec<_> = r.rows.iter().filter(|x| x.cpus == 1 && x.failed.is_none() && x.ns_per_op.is_finite()).collect();
    if rows.is_empty() {
        return Err(anyhow!("the report has no single-CPU results to plot"));
    }
    let cpu_counts: Vec<usize> = {
        let mut v: Vec<usize> = r.rows.iter().map(|x| x.cpus).collect();
        v.sort();
        v.dedup();
        v
    };
    let n = rows.len();
    let height = 140 + 18 * n as u32 + if cpu_counts.len() > 1 { 420 } else { 0 };
    canvas::render(out, (1200, height), &Plot { r, rows, cpu_counts })
}

struct Plot<'a> {
    r: &'a Report,
    rows: Vec<&'a Row>,
    cpu_counts: Vec<usize>,
}

impl Picture for Plot<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let Plot { r, rows, cpu_counts } = self;
        let n = rows.len();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(100 + 18 * n as u32);
        let max = rows.iter().map(|x| x.ns_per_op).fold(1.0, f64::max) * 1.5;
        let mut chart = ChartBuilder::on(&top)
            .caption(format!("ns per alloc+free pair ({} mode, log scale; grey = kernel)", r.mode), ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(420)
            .build_cartesian_2d((1.0..max).log_scale(), 0..n)?;
        let labels: Vec<String> = rows
            .iter()
            .map(|x| {
                let ratio = x.ratio.map_or(String::new(), |v| format!(" ({v:.2}x)"));
                format!("{} | {}{}", x.case.group, x.case.allocator, ratio)
            })
            .collect();
        chart
            .configure_mesh()
            .y_labels(n)
            .y_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
            .x_desc(if r.mode == "icount" { "guest instructions per pair (-icount: 1 ns = 1 instruction)" } else { "ns/op" })
            .draw()?;
        chart.draw_series(rows.iter().enumerate().map(|(i, x)| {
            Rectangle::new([(1.0, i), (x.ns_per_op.max(1.0), i + 1)], color(&x.case.allocator).filled())
        }))?;
        if let [.., last] = cpu_counts[..] {
            if cpu_counts.len() > 1 {
                // Throughput scaling: ops/s at each CPU count relative to one CPU.
                let mut chart = ChartBuilder::on(&bottom)
                    .caption("throughput scaling with CPUs (ops/s relative to 1 CPU)", ("sans-serif", 18))
                    .margin(20)
                    .x_label_area_size(30)
                    .y_label_area_size(60)
                    .build_cartesian_2d(1usize..last, 0.0..(last as f64 + 0.5))?;
                chart.configure_mesh().x_desc("CPUs").y_desc("speed-up").draw()?;
                for one in rows.iter().filter(|x| !x.case.pattern.contains("cross")) {
                    let pts: Vec<(usize, f64)> = r
                        .rows
                        .iter()
                        .filter(|y| y.case.group == one.case.group && y.case.allocator == one.case.allocator && y.failed.is_none())
                        .map(|y| (y.cpus, y.ops_per_sec / one.ops_per_sec))
                        .collect();
                    if pts.len() > 1 {
                        let c = color(&one.case.allocator);
                        chart
                            .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                            .label(format!("{} {}", one.case.group, one.case.allocator))
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], c));
                    }
                }
                chart.configure_series_labels().border_style(BLACK).draw()?;
            }
        }
        Ok(())
    }
}
