//! Images to vision-encoder input: decoded under explicit limits, EXIF orientation applied,
//! alpha flattened onto white, the long side capped (aspect kept), plus a small JPEG
//! thumbnail so the UI never loads a user's original bytes.
//!
//! Bombs are stopped before decoding: the header's dimensions are checked against
//! [`crate::IngestLimits::max_image_pixels`], and `image::Limits` caps every allocation the
//! decoders make (ancillary chunks such as a compressed iTXt included). Animated GIFs decode
//! their first frame only.

use crate::{IngestError, IngestOptions, Result};
use fast_image_resize as fir;
use image::{DynamicImage, ImageDecoder, ImageReader};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Cursor;

/// An image ready for the vision encoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedImage {
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes, row-major RGB.
    #[serde(with = "crate::base64")]
    pub rgb: Vec<u8>,
    /// Size of the source (after orientation) before resizing.
    pub original_width: u32,
    pub original_height: u32,
    /// Lowercase hex SHA-256 of the original file's bytes; for pixels that came from no file
    /// (a rendered page, raw pixels) of the prepared `rgb`, which is 4-9 times smaller than
    /// the source pixels and what the encoder sees.
    pub source_sha256: String,
    pub thumbnail: Thumbnail,
}

/// A re-encoded preview for the UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    /// MIME type of `bytes`.
    pub mime: String,
    pub width: u32,
    pub height: u32,
    #[serde(with = "crate::base64")]
    pub bytes: Vec<u8>,
}

/// Decodes an image file and prepares it for the vision encoder.
pub fn prepare_image(bytes: &[u8], options: &IngestOptions) -> Result<PreparedImage> {
    let max_pixels = options.limits.max_image_pixels;
    let corrupt = |error: image::ImageError| match error {
        image::ImageError::Limits(limit) => IngestError::Bomb {
            detail: format!("the image needs more memory than allowed ({limit})"),
        },
        other => IngestError::Corrupt {
            kind: "image".into(),
            detail: other.to_string(),
        },
    };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|error| IngestError::Corrupt {
            kind: "image".into(),
            detail: error.to_string(),
        })?;
    let mut limits = image::Limits::default();
    let max_side = u32::try_from(max_pixels.min(u64::from(u32::MAX))).unwrap_or(u32::MAX);
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    // Room for the decoded RGBA16 worst case of a maximal image, no more.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(16 * 1024 * 1024));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(IngestError::TooLarge {
            what: format!("the image ({width}×{height} pixels)"),
            actual: pixels,
            limit: max_pixels,
        });
    }
    if pixels == 0 {
        return Err(IngestError::Corrupt {
            kind: "image".into(),
            detail: "the image has no pixels".into(),
        });
    }
    let orientation = decoder.orientation().map_err(corrupt)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    let (width, height) = (image.width(), image.height());
    let rgb = flatten_to_rgb(image);
    let source_sha256 = hex_sha256(bytes);
    prepare_rgb(width, height, rgb, Some(source_sha256), options)
}

/// Prepares already-decoded RGB8 pixels (a clipboard screenshot, a rendered page) like an
/// image file: long side capped, thumbnail made. `rgb` must hold `width * height * 3` bytes.
pub fn prepare_pixels(
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    options: &IngestOptions,
) -> Result<PreparedImage> {
    if rgb.len() as u64 != u64::from(width) * u64::from(height) * 3 || width == 0 || height == 0 {
        return Err(IngestError::Corrupt {
            kind: "image".into(),
            detail: format!(
                "{} bytes do not hold a {width}×{height} RGB image",
                rgb.len()
            ),
        });
    }
    prepare_rgb(width, height, rgb, None, options)
}

/// Resizes decoded RGB pixels for the encoder and makes the thumbnail. `source_sha256`: the
/// source file's hash; `None` for pixels from no file (then the prepared pixels are hashed).
pub(crate) fn prepare_rgb(
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    source_sha256: Option<String>,
    options: &IngestOptions,
) -> Result<PreparedImage> {
    let (target_width, target_height) = fit_within(width, height, options.max_image_side);
    let resized = if (width, height) == (target_width, target_height) {
        rgb
    } else {
        // Catmull-Rom: sharp enough for the encoder to read small text.
        resize_rgb(
            (width, height),
            &rgb,
            (target_width, target_height),
            fir::FilterType::CatmullRom,
        )?
    };
    let (thumb_width, thumb_height) =
        fit_within(target_width, target_height, options.thumbnail_side);
    // A box filter averages the pixels each thumbnail pixel covers: a clean small picture at a
    // quarter of Catmull-Rom's taps (a page's thumbnail took ~8 ms of its ~20 ms otherwise).
    let thumb_rgb = resize_rgb(
        (target_width, target_height),
        &resized,
        (thumb_width, thumb_height),
        fir::FilterType::Box,
    )?;
    let source_sha256 = source_sha256.unwrap_or_else(|| hex_sha256(&resized));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode(
            &thumb_rgb,
            thumb_width,
            thumb_height,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|error| IngestError::Corrupt {
            kind: "image".into(),
            detail: format!("thumbnail encoding failed: {error}"),
        })?;
    Ok(PreparedImage {
        width: target_width,
        height: target_height,
        rgb: resized,
        original_width: width,
        original_height: height,
        source_sha256,
        thumbnail: Thumbnail {
            mime: "image/jpeg".into(),
            width: thumb_width,
            height: thumb_height,
            bytes: jpeg,
        },
    })
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Largest size with the same aspect ratio whose long side is at most `max_side`
/// (never upscales, never below 1 pixel).
fn fit_within(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let long = width.max(height);
    let max_side = max_side.max(1);
    if long <= max_side {
        return (width, height);
    }
    let scale = f64::from(max_side) / f64::from(long);
    let scaled = |side: u32| ((f64::from(side) * scale).round() as u32).clamp(1, max_side);
    (scaled(width), scaled(height))
}

/// Transparent pixels become white (screenshots with alpha would otherwise turn black).
fn flatten_to_rgb(image: DynamicImage) -> Vec<u8> {
    if !image.color().has_alpha() {
        return image.into_rgb8().into_raw();
    }
    let rgba = image.into_rgba8();
    let mut rgb = Vec::with_capacity(rgba.len() / 4 * 3);
    for pixel in rgba.into_raw().chunks_exact(4) {
        let alpha = u32::from(pixel[3]);
        for &channel in &pixel[..3] {
            rgb.push(((u32::from(channel) * alpha + 255 * (255 - alpha) + 127) / 255) as u8);
        }
    }
    rgb
}

fn resize_rgb(
    (width, height): (u32, u32),
    rgb: &[u8],
    (to_width, to_height): (u32, u32),
    filter: fir::FilterType,
) -> Result<Vec<u8>> {
    if (width, height) == (to_width, to_height) {
        return Ok(rgb.to_vec());
    }
    let failed = |detail: String| IngestError::Corrupt {
        kind: "image".into(),
        detail: format!("resizing failed: {detail}"),
    };
    let source = fir::images::ImageRef::new(width, height, rgb, fir::PixelType::U8x3)
        .map_err(|error| failed(error.to_string()))?;
    let mut target = fir::images::Image::new(to_width, to_height, fir::PixelType::U8x3);
    let options = fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(filter));
    fir::Resizer::new()
        .resize(&source, &mut target, &options)
        .map_err(|error| failed(error.to_string()))?;
    Ok(target.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_side_is_capped_with_aspect_kept() {
        assert_eq!(fit_within(3840, 2160, 1344), (1344, 756));
        assert_eq!(fit_within(1, 4096, 1344), (1, 1344));
        assert_eq!(fit_within(400, 800, 1344), (400, 800));
    }
}
