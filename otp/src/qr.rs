//! QR codes as SVG, rendered in-process.
//!
//! The QR code for OTP binding carries the TOTP secret, so it must never be sent to an
//! external chart service; SVG keeps it a few hundred bytes of text that a page can inline or
//! serve as a `data:` URI, with no image library and no font or raster dependencies.

use std::fmt::{self, Write as _};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use qrcode::{Color, QrCode};

/// Light modules around the code; the QR specification asks for 4 so scanners find the edge.
const QUIET_ZONE: usize = 4;
/// Rendered size in CSS pixels: large enough for phone cameras at arm's length.
const SIZE_PX: usize = 240;

/// `data` does not fit in a QR code (longer than the largest version can hold).
#[derive(Debug)]
pub struct QrError;

impl fmt::Display for QrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The data is not repeated: it is usually an otpauth URI carrying a secret.
        f.write_str("data too long for a QR code")
    }
}

impl std::error::Error for QrError {}

/// The QR code for `data` as a standalone SVG document: black modules on white with a quiet
/// zone, 240×240 px, `shape-rendering="crispEdges"` so module edges are not anti-aliased into
/// grey that confuses scanners.
///
/// Dark modules are drawn as one `<path>` of horizontal runs (one subpath per run), which
/// keeps the document small and identical for identical input.
pub fn svg(data: &str) -> Result<String, QrError> {
    let code = QrCode::new(data.as_bytes()).map_err(|_| QrError)?;
    let width = code.width();
    let colors = code.to_colors();
    let total = width + 2 * QUIET_ZONE;

    let mut path = String::new();
    for (y, row) in colors.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            if row[x] != Color::Dark {
                x += 1;
                continue;
            }
            let start = x;
            while x < width && row[x] == Color::Dark {
                x += 1;
            }
            // Writing into a String cannot fail.
            let _ = write!(
                path,
                "M{} {}h{}v1h-{}z",
                start + QUIET_ZONE,
                y + QUIET_ZONE,
                x - start,
                x - start
            );
        }
    }

    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" \
         width=\"{SIZE_PX}\" height=\"{SIZE_PX}\" viewBox=\"0 0 {total} {total}\" \
         shape-rendering=\"crispEdges\">\
         <rect width=\"{total}\" height=\"{total}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{path}\"/>\
         </svg>"
    ))
}

/// [`svg`] as a `data:image/svg+xml;base64,...` URI, so a page can use it in `<img src>` under
/// a CSP that allows only `img-src 'self' data:` (no inline SVG styling concerns, no fetch).
pub fn svg_data_uri(data: &str) -> Result<String, QrError> {
    let svg = svg(data)?;
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        STANDARD.encode(svg.as_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads back the `viewBox` size and the dark modules from the path this module writes.
    fn parse_svg(svg: &str) -> (usize, Vec<Vec<bool>>) {
        let view = svg.split("viewBox=\"0 0 ").nth(1).expect("viewBox");
        let total: usize = view
            .split(' ')
            .next()
            .expect("size")
            .parse()
            .expect("number");
        let d = svg
            .split(" d=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("path data");
        let mut grid = vec![vec![false; total]; total];
        for run in d.split('M').filter(|s| !s.is_empty()) {
            // "X Yh{n}v1h-{n}z"
            let (xy, rest) = run.split_once('h').expect("h");
            let (x, y) = xy.split_once(' ').expect("x y");
            let (x, y): (usize, usize) = (x.parse().expect("x"), y.parse().expect("y"));
            let n: usize = rest.split('v').next().expect("n").parse().expect("n");
            assert_eq!(rest, format!("{n}v1h-{n}z"));
            for cell in &mut grid[y][x..x + n] {
                *cell = true;
            }
        }
        (total, grid)
    }

    /// Rasterises the parsed SVG (4 px per module) and decodes it with an independent QR reader.
    fn decode(svg: &str) -> String {
        let (total, grid) = parse_svg(svg);
        let scale = 4;
        let mut img =
            rqrr::PreparedImage::prepare_from_bitmap(total * scale, total * scale, |x, y| {
                grid[y / scale][x / scale]
            });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code");
        grids[0].decode().expect("decodes").1
    }

    #[test]
    fn svg_decodes_back_to_the_data() {
        let uri = "otpauth://totp/Menshen:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
                   &issuer=Menshen&algorithm=SHA1&digits=6&period=30";
        let svg = svg(uri).expect("fits");
        assert!(svg.starts_with("<svg "));
        assert!(svg.contains("<rect") && svg.contains("<path"));
        assert!(svg.contains("shape-rendering=\"crispEdges\""));
        assert!(svg.contains("width=\"240\" height=\"240\""));
        assert_eq!(decode(&svg), uri);
    }

    #[test]
    fn quiet_zone_is_light() {
        let svg = svg("hello").expect("fits");
        let (total, grid) = parse_svg(&svg);
        for (y, row) in grid.iter().enumerate() {
            for (x, &dark) in row.iter().enumerate() {
                let inside = (QUIET_ZONE..total - QUIET_ZONE).contains(&x)
                    && (QUIET_ZONE..total - QUIET_ZONE).contains(&y);
                assert!(inside || !dark, "dark module in quiet zone at {x},{y}");
            }
        }
    }

    #[test]
    fn deterministic_and_module_count() {
        // "hello" is version 1 (21×21 modules) at the default error-correction level.
        let a = svg("hello").expect("fits");
        assert_eq!(a, svg("hello").expect("fits"));
        assert!(a.contains("viewBox=\"0 0 29 29\""));
        assert_eq!(decode(&a), "hello");
    }

    #[test]
    fn too_long_is_an_error() {
        let data = "x".repeat(5000);
        assert!(svg(&data).is_err());
        assert!(svg_data_uri(&data).is_err());
        assert_eq!(QrError.to_string(), "data too long for a QR code");
    }

    #[test]
    fn data_uri_wraps_the_svg() {
        let uri = svg_data_uri("hello").expect("fits");
        let b64 = uri
            .strip_prefix("data:image/svg+xml;base64,")
            .expect("prefix");
        let decoded = STANDARD.decode(b64).expect("base64");
        assert_eq!(decoded, svg("hello").expect("fits").into_bytes());
    }
}
