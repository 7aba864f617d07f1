//! Where rkctl's pictures go: an SVG file, or a PNG file drawn with an
//! embedded font (DejaVu Sans, from the `dejavu` crate), so the static
//! binary in the guest needs no system fonts.
use anyhow::{bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::Path;
use std::sync::Once;

/// Something that draws itself on any plotters backend.
pub trait Picture {
    /// Draws the picture on `root`.
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// Draws `p` into `out`, a `.svg` or `.png` file of `size` pixels.
pub fn render(out: &Path, size: (u32, u32), p: &impl Picture) -> Result<()> {
    // Both backends lay text out with the registered font's metrics.
    register_sans();
    match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("svg") => {
            let root = SVGBackend::new(out, size).into_drawing_area();
            p.paint(&root)?;
            root.present().with_context(|| format!("cannot write {}", out.display()))?;
        }
        Some("png") => {
            let root = BitMapBackend::new(out, size).into_drawing_area();
            p.paint(&root)?;
            root.present().with_context(|| format!("cannot write {}", out.display()))?;
        }
        _ => bail!("unsupported picture format {} (use .svg or .png)", out.display()),
    }
    Ok(())
}

/// Makes "sans-serif" the embedded DejaVu Sans for the bitmap backend.
fn register_sans() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (style, bytes) in [(FontStyle::Normal, dejavu::sans::regular()), (FontStyle::Bold, dejavu::sans::bold())] {
            // Only a malformed font fails, and this one is fixed at build time.
            register_font("sans-serif", style, bytes).unwrap_or_else(|_| panic!("the embedded DejaVu Sans is not a valid font"));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Label;
    impl Picture for Label {
        fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
        where
            DB::ErrorType: 'static,
        {
            root.fill(&WHITE)?;
            root.draw(&Text::new("rkalloc", (10, 10), ("sans-serif", 20).into_font()))?;
            Ok(())
        }
    }

    #[test]
    fn png_has_the_png_signature_and_text_pixels() {
        let out = std::env::temp_dir().join(format!("rkctl-canvas-{}.png", std::process::id()));
        render(&out, (120, 40), &Label).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        std::fs::remove_file(&out).ok();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // A blank 120x40 white PNG compresses to a few hundred bytes; the
        // rendered glyphs make it larger.
        assert!(bytes.len() > 400, "no text drawn? {} bytes", bytes.len());
    }

    /// A chart measures its labels: that needs the font for SVG too.
    struct Chart;
    impl Picture for Chart {
        fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
        where
            DB::ErrorType: 'static,
        {
            root.fill(&WHITE)?;
            let mut c = ChartBuilder::on(root)
                .caption("rkalloc", ("sans-serif", 18))
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d(0..10, 0..10)?;
            c.configure_mesh().x_desc("ops").draw()?;
            Ok(())
        }
    }

    #[test]
    fn charts_render_in_both_formats() {
        for ext in ["svg", "png"] {
            let out = std::env::temp_dir().join(format!("rkctl-chart-{}.{ext}", std::process::id()));
            render(&out, (300, 200), &Chart).unwrap();
            let len = std::fs::metadata(&out).unwrap().len();
            std::fs::remove_file(&out).ok();
            assert!(len > 500, "{ext}: {len} bytes");
        }
    }

    #[test]
    fn other_formats_are_refused() {
        let err = render(Path::new("/tmp/x.jpg"), (10, 10), &Label).unwrap_err();
        assert!(err.to_string().contains("use .svg or .png"));
    }
}
